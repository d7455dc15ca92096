"""Turning failures into pages: domain errors keep their message and status, nothing becomes a bare 500."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..errors import DomainError
from .context import discard_request_transaction, is_api_request
from .rendering import render, toast_response

log = logging.getLogger(__name__)

TITLES = {
    400: "Bad request", 401: "Please log in", 403: "Not allowed", 404: "Page not found",
    405: "Method not allowed", 409: "Conflict", 413: "Request too large", 422: "Check the form",
    429: "Too many attempts", 500: "Something went wrong", 503: "Service unavailable",
}


def json_error(status: int, message: str, fields: dict[str, list[str]] | None = None):
    """The API's one error shape: ``{"error": {"message": ..., "fields": {field: [messages]}}}``."""
    discard_request_transaction()
    response = jsonify(error={"message": message, "fields": fields or {}})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


def error_page(status: int, message: str):
    """A full error page; for HTMX, leave the page as it is and show the message as a toast.

    The request's transaction is rolled back first (the page reads the session to show who is logged in,
    which a failed transaction would refuse). Should rendering fail all the same (the database is down),
    the answer is the message as plain text: still this status, still returned through the app, so the
    security headers are added to it as to every response. Under ``/api/v1/`` every error is JSON instead,
    also for URLs no route matches: a program reads it, not a person."""
    if is_api_request():
        return json_error(status, message)
    try:
        discard_request_transaction()
        if request.htmx:
            # Out-of-band toasts are still applied when the main swap is "none".
            return toast_response(message, status=status)
        return render("errors/error.html", status=status, title=TITLES.get(status, "Error"), message=message)
    except Exception:
        log.exception("the error page for %s %s (%s) could not be rendered", request.method, request.path, status)
        return (f"{TITLES.get(status, 'Error')}\n\n{message}\n", status,
                {"Content-Type": "text/plain; charset=utf-8", "Vary": "HX-Request"})


def register(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def domain_error(exc: DomainError):
        if is_api_request():
            errors = getattr(exc, "errors", None)
            fields = errors or ({exc.field: [exc.message]} if exc.field else {})
            # A page highlights the fields; a program reads their names from "fields".
            message = "Please correct the fields listed." if errors else exc.message
            return json_error(exc.status, message,
                              {name: [text] if isinstance(text, str) else list(text) for name, text in fields.items()})
        return error_page(exc.status, exc.message)

    @app.errorhandler(CSRFError)
    def csrf_error(exc: CSRFError):
        return error_page(400, "This form has expired or did not come from this site. "
                               "Reload the page and try again.")

    @app.errorhandler(429)
    def too_many(exc):
        if request.endpoint == "auth.login_submit":
            from .auth import too_many_logins

            return too_many_logins(exc)
        if request.endpoint in ("account.change_email", "account.change_password"):
            from .account import too_many_password_checks

            return too_many_password_checks(exc)
        return error_page(429, "Too many requests. Please wait a moment and try again.")

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        messages = {404: "We couldn't find that page, or it belongs to another account.",
                    405: "That action isn't available here.",
                    413: "That request was too large."}
        return error_page(exc.code or 500, messages.get(exc.code, exc.description or ""))

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_page(500, "Something went wrong on our side. Nothing was charged; please try again.")
