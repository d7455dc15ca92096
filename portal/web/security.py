"""Response headers every page carries, and the HTMX response defaults."""
from __future__ import annotations

from urllib.parse import urlsplit

from flask import Flask, request


def _origin(url: str | None) -> str | None:
    if not url:
        return None
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else None


def content_security_policy(settings) -> str:
    """Only our own scripts and styles, plus exactly the Stripe hosts Stripe mode needs."""
    script, frame, connect = ["'self'"], [], ["'self'"]
    if settings.processor == "stripe":
        js = _origin(settings.stripe_js_url) or "https://js.stripe.com"
        script.append(js)
        frame += [js, "https://hooks.stripe.com"]
        connect.append(_origin(settings.stripe_api_base) or "https://api.stripe.com")
        if js not in connect:
            connect.append(js)
    directives = {
        "default-src": ["'self'"],
        "script-src": script,
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": connect,
        "frame-src": frame or ["'none'"],
        "form-action": ["'self'"] + (["https://checkout.stripe.com"] if settings.processor == "stripe" else []),
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
    }
    return "; ".join(f"{k} {' '.join(v)}" for k, v in directives.items())


def register(app: Flask) -> None:
    settings = app.extensions["portal.settings"]
    csp = content_security_policy(settings)

    @app.before_request
    def refuse_nul_bytes():
        # No field of ours can hold a NUL character (PostgreSQL text refuses it outright); say so plainly
        # instead of failing deep inside a query.
        if request.method in ("POST", "PUT", "PATCH") and request.mimetype != "application/json" \
                and request.endpoint != "webhooks.stripe_webhook":
            if any("\x00" in value for value in request.form.values()):
                from .errors import error_page

                return error_page(400, "The form contained characters that can't be saved. Please check it.")
        if any("\x00" in value for value in request.args.values()):
            from .errors import error_page

            return error_page(400, "The address contained characters that can't be used.")

    # The same for every answer, so worked out once per app. A route that set one of them itself keeps its own.
    constant = [("Content-Security-Policy", csp), ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "same-origin"), ("X-Frame-Options", "DENY")]
    if not settings.demo:
        constant.append(("Strict-Transport-Security", "max-age=63072000; includeSubDomains"))
    constant_names = frozenset(name.lower() for name, _ in constant)

    @app.after_request
    def headers(response):
        present = {name.lower() for name in response.headers.keys()}
        if present.isdisjoint(constant_names):
            response.headers.extend(constant)
        else:
            response.headers.extend([(name, value) for name, value in constant if name.lower() not in present])
        if request.endpoint and request.endpoint != "static" and response.mimetype == "text/html" \
                and "cache-control" not in present:
            # Billing pages hold personal data: keep them out of shared and back-button caches.
            response.headers["Cache-Control"] = "no-store"
        return response
