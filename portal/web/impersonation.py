"""The app-wide side of "View as customer": while support staff view an account as its customer, every
request is read-only and every answer, page or HTMX partial, says who is looking.

The hooks are registered on the app rather than on a blueprint's routes, so a route added later is covered
the day it is added. Starting and ending a view are console routes (``portal/web/staff.py``); the rules
themselves are in ``portal/auth/impersonation.py``.
"""
from __future__ import annotations

from flask import Flask, flash, render_template, request, session, url_for
from flask_login import current_user, login_user

from ..auth import impersonation, sessions
from .context import client_ip, db, is_api_request
from .errors import error_page
from .rendering import go_to

# While impersonating, only these may be posted; every other change is refused, including routes added later.
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
ALLOWED_WHILE_IMPERSONATING = frozenset({"staff.end_impersonation", "auth.logout"})


def impersonating():
    """The live Impersonation of this request, or None."""
    return getattr(current_user, "impersonation", None) if current_user else None


def switch_session(token: str) -> None:
    """Put the rotated session in the cookie; nothing else from the old one survives."""
    session.clear()
    found = sessions.load_session(db(), token, now=sessions.utcnow())
    login_user(impersonation.effective_user(*found))


def guard_impersonation():
    """While impersonating: end it once it has expired, and refuse every change but ending it or logging out."""
    if request.endpoint in (None, "static") or is_api_request():
        return None  # the API ignores cookies: a staff browser's view of a customer has no say there
    viewed = impersonating()
    if viewed is None:
        return None
    now = sessions.utcnow()
    if impersonation.is_expired(viewed, now):
        account_id, name = viewed.account_id, viewed.account.name
        ended = impersonation.stop(db(), current_user.get_id(), ip=client_ip(), expired=True, now=now)
        switch_session(ended.token)
        flash(f"Your view of {name} as a customer ended after 30 minutes.", "success")
        return go_to(url_for("staff.account", account_id=account_id))
    if request.method in SAFE_METHODS or request.endpoint in ALLOWED_WHILE_IMPERSONATING:
        return None
    impersonation.record_refusal(db(), viewed, endpoint=request.endpoint, method=request.method,
                                 path=request.path, ip=client_ip(), now=now)
    return error_page(403, impersonation.READ_ONLY_MESSAGE)


def banner_on_partials(response):
    """HTMX answers carry the impersonation banner out of band, so no swap can hide who is looking."""
    if not request.htmx or impersonating() is None:
        return response
    if (response.status_code == 204 or 300 <= response.status_code < 400 or "HX-Redirect" in response.headers
            or response.mimetype != "text/html" or response.direct_passthrough or response.is_streamed):
        return response
    banner = render_template("staff/_impersonation_banner.html", banner_oob=True)
    response.set_data(response.get_data() + banner.encode())
    return response


def impersonation_context() -> dict:
    return {"active_impersonation": impersonating(), "read_only_message": impersonation.READ_ONLY_MESSAGE}


def register(app: Flask) -> None:
    app.before_request(guard_impersonation)
    app.after_request(banner_on_partials)
    app.context_processor(impersonation_context)
