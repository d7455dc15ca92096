"""The API's Flask-Smorest set-up: the ``Api`` (OpenAPI document and error shape) and ``api_blueprint``, the
one way to make a blueprint of API routes, so every one of them is behind a bearer key and answers errors
in the same JSON."""
from __future__ import annotations

from flask import Flask
from flask_smorest import Api, Blueprint
from werkzeug.exceptions import HTTPException

from ..context import API_PREFIX
from ..errors import json_error
from .keys import require_key
from .schemas import ErrorSchema

PREFIX = API_PREFIX.rstrip("/")
# Where webargs reports a refusal ("json", "query", ...): dropped from field names, which are the body's or
# the query's own ("address.country", "page").
LOCATIONS = ("json", "query", "path", "form", "headers", "cookies", "files", "view_args")
# What marshmallow calls an error about the body as a whole (not an object, malformed JSON).
WHOLE_BODY = "_schema"


class PortalApi(Api):
    """Flask-Smorest's Api, with our error shape in the document and without its app-wide error handler
    (which would answer the portal's HTML pages in JSON too): errors of API routes are turned into JSON by
    ``http_error`` below and by ``portal/web/errors.py`` for anything under ``/api/v1/``."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self):
        pass


def field_messages(messages, prefix: str = "") -> dict[str, list[str]]:
    """webargs' nested messages (``{"json": {"address": {"country": [...]}}}``) as flat field names."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, dict):
        for key, value in messages.items():
            key = str(key)
            if not prefix and key in LOCATIONS:
                name = ""
            elif key == WHOLE_BODY:
                name = prefix or "body"
            else:
                name = f"{prefix}.{key}" if prefix else key
            for field, texts in field_messages(value, name).items():
                flat.setdefault(field, []).extend(texts)
    elif isinstance(messages, (list, tuple)):
        for item in messages:
            if isinstance(item, (dict, list, tuple)):
                for field, texts in field_messages(item, prefix).items():
                    flat.setdefault(field, []).extend(texts)
            else:
                flat.setdefault(prefix or "body", []).append(str(item))
    else:
        flat.setdefault(prefix or "body", []).append(str(messages))
    return flat


def http_error(exc: HTTPException):
    """A refusal raised in an API route (webargs' 422 with its field messages, ``abort(404)``) as JSON."""
    data = getattr(exc, "data", None) or {}
    fields = field_messages(data["messages"]) if "messages" in data else {}
    message = data.get("message") or ("Please correct the fields listed." if fields else exc.description or exc.name)
    response = json_error(exc.code or 500, message, fields)
    response.headers.update(data.get("headers") or {})
    return response


def api_blueprint(name: str, import_name: str, *, description: str) -> Blueprint:
    """A blueprint of API routes under ``/api/v1``, named ``api_v1_<name>``: every route needs a bearer key."""
    bp = Blueprint(f"api_v1_{name}", import_name, url_prefix=PREFIX, description=description)
    bp.before_request(require_key)
    bp.register_error_handler(HTTPException, http_error)
    return bp


def configure(app: Flask, *, title: str) -> PortalApi:
    """Bind the Api to the app: it serves the OpenAPI document at ``/api/v1/openapi.json``."""
    app.config.update(
        API_TITLE=title, API_VERSION="v1", OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX=PREFIX, OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "security": [{"bearerKey": []}],
            "components": {"securitySchemes": {"bearerKey": {
                "type": "http", "scheme": "bearer",
                "description": "An API key made with `portal api-keys create`, e.g. `portal_sk_…`"}}},
        },
    )
    return PortalApi(app)
