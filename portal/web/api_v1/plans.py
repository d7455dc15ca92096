"""``/api/v1/plans``: the catalogue the product sells (``billing/subscriptions/plans.py``)."""
from __future__ import annotations

from marshmallow import Schema, fields, validate

from ...api_objects import plan_object
from ...billing.subscriptions import plans
from ...bounds import INT_MAX
from ...models import utcnow
from ..context import db
from .blueprint import api_blueprint
from .keys import api_actor
from .schemas import CURRENCIES, ErrorSchema, PlanListSchema, PlanSchema, Text, path_parameter

bp = api_blueprint("plans", __name__, description="Plans: what is sold, monthly or yearly, at a price in minor units.")

CODE_PARAMETER = path_parameter("code", description=f"The plan's code: {plans.CODE_RULE}",
                                pattern=f"^{plans.CODE.pattern}$", example="pro-monthly")
PRICE = {"validate": validate.Range(min=0, max=INT_MAX), "strict": True,
         "metadata": {"description": "In minor units (cents); a change applies from each subscription's next period"}}


class PlanCreateSchema(Schema):
    code = Text(max_length=50, required=True, metadata={"description": plans.CODE_RULE, "pattern": f"^{plans.CODE.pattern}$"})
    name = Text(max_length=plans.NAME_LENGTH, required=True)
    interval = fields.String(required=True, validate=validate.OneOf(plans.INTERVALS))
    price = fields.Integer(required=True, **PRICE)
    currency = Text(max_length=3, required=True, metadata={"description": "ISO 4217, e.g. USD", "enum": CURRENCIES})
    self_serve = fields.Boolean(load_default=True,
                                metadata={"description": "Whether customers may pick it themselves"})


class PlanUpdateSchema(Schema):
    name = Text(max_length=plans.NAME_LENGTH)
    price = fields.Integer(**PRICE)
    self_serve = fields.Boolean()


@bp.route("/plans", methods=["POST"])
@bp.arguments(PlanCreateSchema)
@bp.response(201, PlanSchema)
@bp.alt_response(409, schema=ErrorSchema, description="A plan with this code exists already")
def create_plan(values):
    """Add a plan to the catalogue."""
    plan = plans.create_plan(db(), code=values["code"], name=values["name"], interval=values["interval"],
                             price_cents=values["price"], currency=values["currency"],
                             self_serve=values["self_serve"], actor=api_actor(), now=utcnow())
    return plan_object(plan)


@bp.route("/plans", methods=["GET"])
@bp.response(200, PlanListSchema)
def list_plans():
    """Every plan, by code."""
    return {"object": "list", "data": [plan_object(plan) for plan in plans.list_plans(db())]}


@bp.route("/plans/<code>", methods=["PATCH"], parameters=[CODE_PARAMETER])
@bp.arguments(PlanUpdateSchema)
@bp.response(200, PlanSchema)
@bp.alt_response(404, schema=ErrorSchema, description="No plan has this code")
def update_plan(values, code):
    """Rename a plan, change its price (from the next period on) or whether customers may pick it."""
    changes = plans.PlanChanges(name=values.get("name"), price_cents=values.get("price"),
                                self_serve=values.get("self_serve"))
    return plan_object(plans.update_plan(db(), code, changes, actor=api_actor(), now=utcnow()))
