"""The billing portal: a server-rendered Flask + HTMX app. ``create_app`` builds one."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from flask import Flask, g

from .config import Settings, load_settings
from .db import Database
from .extensions import csrf, htmx, limiter, login_manager
from .payments import PaymentGateway, build_gateway

ROOT = Path(__file__).resolve().parent.parent


def create_app(settings: Settings | None = None, *, database: Database | None = None,
               gateway: PaymentGateway | None = None) -> Flask:
    settings = settings or load_settings()
    app = Flask(__name__, template_folder=str(ROOT / "templates"), static_folder=str(ROOT / "static"),
                instance_path=str(settings.instance_path))
    app.config.update(
        SECRET_KEY=settings.secret_key,
        TESTING=settings.testing,
        SESSION_COOKIE_NAME="portal_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        # Tokens are bound to the session already; an hour-long limit only breaks pages left open.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=False,
        RATELIMIT_STORAGE_URI=settings.ratelimit_storage_url,
        RATELIMIT_HEADERS_ENABLED=False,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    from .billing.collecting.bank_transfer import TransferTerms
    from .billing.collecting.dunning import RetryPolicy
    from .documents import rendering

    rendering.configure(base_url=settings.base_url)
    database = database or Database(settings.database_url)
    app.extensions["portal.settings"] = settings
    # Built once from the settings' days; passed to every service that may record a failed payment (no global).
    app.extensions["portal.retry_policy"] = RetryPolicy(settings.retry_schedule)
    app.extensions["portal.transfer_terms"] = TransferTerms.from_settings(settings)
    app.extensions["portal.db"] = database
    app.extensions["portal.gateway"] = gateway or build_gateway(settings, database)

    if settings.proxy_hops:
        # Each trusted proxy appends the address it saw to X-Forwarded-For; the last N entries are theirs and
        # anything before them is whatever the client sent. X-Forwarded-Proto gives the scheme the customer used
        # (Stripe return URLs are built from it). X-Forwarded-Host is not trusted: the proxy passes the Host
        # header through, and a proxy that doesn't overwrite X-Forwarded-Host would let clients pick our name.
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.proxy_hops, x_proto=settings.proxy_hops,
                                x_host=0, x_port=0, x_prefix=0)

    csrf.init_app(app)
    htmx.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)

    from .web import register

    register(app)

    @app.teardown_appcontext
    def close_session(_exc):
        session = g.pop("db_session", None)
        if session is not None:
            session.close()

    return app
