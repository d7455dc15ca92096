"""``/api/v1/accounts/{external_id}/subscriptions``: start one, list them (``billing/provisioning.py``)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...billing import provisioning
from ...billing.subscriptions.starting import MAX_TRIAL_DAYS
from ...models import utcnow
from ..context import database, db, gateway, retry_policy, seller
from .accounts import EXTERNAL_ID_PARAMETER
from .blueprint import api_blueprint
from .keys import api_actor
from .schemas import ErrorSchema, SubscriptionListSchema, SubscriptionSchema, Text

bp = api_blueprint("subscriptions", __name__, description="Subscriptions: an account's plan, one live at a time.")


class SubscriptionStartSchema(Schema):
    plan = Text(max_length=50, required=True, metadata={"description": "The plan's code"})
    start_date = fields.Date(load_default=None, metadata={
        "description": "Today (the default) or a later day, up to a year ahead; billed from then"})
    trial_days = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_TRIAL_DAYS), metadata={
        "description": "No invoice until the trial ends; the first period starts then"})


@bp.route("/accounts/<external_id>/subscriptions", methods=["POST"], parameters=[EXTERNAL_ID_PARAMETER])
@bp.arguments(SubscriptionStartSchema)
@bp.response(201, SubscriptionSchema)
@bp.alt_response(404, schema=ErrorSchema, description="No account has this id")
@bp.alt_response(409, schema=ErrorSchema, description="The account has a live subscription already")
def start_subscription(body, external_id):
    """Start a plan. Starting now issues the first invoice at once and charges the default card, exactly as
    a renewal does; a later start or a trial is invoiced by the worker when it begins."""
    return provisioning.start_subscription(db(), database(), gateway(), seller(), external_id,
                                           plan_code=body["plan"], start=body["start_date"],
                                           trial_days=body["trial_days"], actor=api_actor(), now=utcnow(),
                                           policy=retry_policy())


@bp.route("/accounts/<external_id>/subscriptions", methods=["GET"], parameters=[EXTERNAL_ID_PARAMETER])
@bp.response(200, SubscriptionListSchema)
@bp.alt_response(404, schema=ErrorSchema, description="No account has this id")
def list_subscriptions(external_id):
    """The account's subscriptions, newest first."""
    return {"object": "list", "data": provisioning.list_subscriptions(db(), external_id)}
