"""``/api/v1/portal-sessions``: the "Manage plan" hand-off (``auth/sign_in_tokens.py``). The product's server
asks for a single-use URL for one of its users and redirects that user's browser to it."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...api_objects import portal_session_object
from ...auth import sign_in_tokens
from ...models import utcnow
from ..context import db, settings
from .blueprint import api_blueprint
from .keys import api_actor, current_key
from .schemas import Text, object_kind

bp = api_blueprint("portal_sessions", __name__,
                   description="Portal sessions: a single-use link that signs the product's user into billing.")


class PortalSessionCreateSchema(Schema):
    account = Text(max_length=100, required=True, metadata={"description": "The account's external id"})
    email = Text(max_length=254, required=True,
                 metadata={"description": "The product's user; added to the account if new (no password needed)"})
    return_url = Text(max_length=500, required=True, metadata={
        "description": "Where \"Back to {product}\" leads; must be on an origin in PORTAL_ALLOWED_RETURN_ORIGINS"})
    flow = fields.String(load_default="billing", validate=validate.OneOf(sign_in_tokens.FLOWS),
                         metadata={"description": "The screen the user lands on"})


class PortalSessionSchema(Schema):
    """``api_objects.portal_session_object``."""

    object = object_kind("portal_session")
    url = fields.String(required=True, metadata={"description": "Single-use; redirect the user's browser here"})
    expires_at = fields.String(required=True, metadata={"format": "date-time"})


@bp.route("/portal-sessions", methods=["POST"])
@bp.arguments(PortalSessionCreateSchema)
@bp.response(201, PortalSessionSchema)
@bp.alt_response(404, description="No account has this external id")
def create_portal_session(values):
    """Make a single-use URL that signs the user in (expires after PORTAL_PORTAL_SESSION_TTL seconds)."""
    url, expires_at = sign_in_tokens.create_portal_session(
        db(), account_external_id=values["account"], email=values["email"], return_url=values["return_url"],
        flow=values["flow"], api_key_id=current_key().id, settings=settings(), now=utcnow(), actor=api_actor())
    return portal_session_object(url=url, expires_at=expires_at)
