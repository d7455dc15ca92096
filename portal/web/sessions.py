"""The cookie session interface: Flask's signed cookie, except on routes that promise to read no session.

``/healthz`` is asked many times a second by load balancers (and by the benchmark as its baseline) and says
it touches nothing. Flask opens the cookie session before the route is known, and anything that then asks
who is logged in (the impersonation guard asks on every request) would run Flask-Login's user loader, a
database lookup. Handing those paths the null session makes every such question answer "nobody" without
decoding the cookie, and nothing is ever written back to it.
"""
from __future__ import annotations

from flask.sessions import SecureCookieSessionInterface

# Exact paths: a prefix would let a later route under it lose its session without anyone noticing.
SESSIONLESS_PATHS = frozenset({"/healthz"})


class PortalSessionInterface(SecureCookieSessionInterface):
    def get_signing_serializer(self, app):
        # Flask builds a new serializer on every request; it depends only on the keys, so keep one per set of
        # keys (a test or a key rotation that changes them gets a new one).
        keys = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        cached = app.extensions.get("portal.session_serializer")
        if cached is None or cached[0] != keys:
            cached = app.extensions["portal.session_serializer"] = (keys, super().get_signing_serializer(app))
        return cached[1]

    def open_session(self, app, request):
        if request.path in SESSIONLESS_PATHS:
            return self.make_null_session(app)
        return super().open_session(app, request)
