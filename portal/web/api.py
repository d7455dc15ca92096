"""A small JSON API for the SaaS product in front of the portal."""
from __future__ import annotations

from flask import Blueprint, jsonify
from flask_login import current_user

from ..billing.subscriptions.access import paid_access
from .context import db

bp = Blueprint("api", __name__, url_prefix="/api")


@bp.get("/entitlements")
def entitlements():
    """Whether the logged-in customer's account has paid access, with its status and why."""
    if not current_user.is_authenticated:
        return jsonify(error="not logged in"), 401
    if current_user.account_id is None:
        return jsonify(error="not a customer account"), 404
    response = jsonify(paid_access(db(), current_user.account_id).as_json())
    response.headers["Cache-Control"] = "no-store"
    return response
