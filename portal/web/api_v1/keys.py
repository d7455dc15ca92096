"""Bearer-key authentication for every route of the API.

The product's servers send ``Authorization: Bearer portal_sk_…``; ``require_key`` runs before each API route
(``api_blueprint`` installs it), answers 401 in JSON when the key is missing, unknown or revoked, and leaves
the key in ``flask.g.api_key``. Cookies play no part: a browser's login session gives no access here, which is
also why the API needs no CSRF token (a forged cross-site request carries cookies, never our bearer key).
"""
from __future__ import annotations

from flask import g, request

from ...audit import Actor
from ...auth import api_keys
from ...models import ApiKey, utcnow
from ..context import client_ip, db
from ..errors import json_error

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="portal"'}


def require_key():
    """Before every API route: find the key, or answer 401."""
    key = api_keys.authenticate(db(), request.headers.get("Authorization"), utcnow(),
                                call=f"{request.method} {request.path}", ip=client_ip())
    if key is None:
        response = json_error(401, "Send a live API key as 'Authorization: Bearer portal_sk_…'.")
        response.headers.update(CHALLENGE)
        return response
    g.api_key = key
    return None


def current_key() -> ApiKey:
    """The key this request was made with (only inside an API route)."""
    return g.api_key


def api_actor() -> Actor:
    """Who a change made through the API is recorded as: the key's name, and the caller's address."""
    return Actor.for_api_key(current_key().name, ip=client_ip())
