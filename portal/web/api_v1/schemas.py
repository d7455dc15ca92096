"""Marshmallow pieces every API route module uses: the error shape, text that refuses NUL bytes, and the
objects of ``portal/api_objects.py`` described for the OpenAPI document (the dicts are built there; these
schemas only say what they hold, so an answer and its description cannot drift apart without the
Schemathesis run failing)."""
from __future__ import annotations

import pycountry
from marshmallow import Schema, ValidationError, fields

# Listed in the document, so a client (and Schemathesis) sees which codes there are; the services check them.
CURRENCIES = sorted(currency.alpha_3 for currency in pycountry.currencies)
COUNTRIES = sorted(country.alpha_2 for country in pycountry.countries)


class Text(fields.String):
    """A string that may be stored: no NUL byte (PostgreSQL refuses it in text), trimmed, bounded."""

    def __init__(self, *, max_length: int, **kwargs):
        metadata = {**kwargs.pop("metadata", {}), "maxLength": max_length}
        super().__init__(metadata=metadata, **kwargs)
        self.max_length = max_length

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ValidationError("Contains a character that can't be stored.")
        text = text.strip()
        if len(text) > self.max_length:
            raise ValidationError(f"At most {self.max_length} characters.")
        return text


def path_parameter(name: str, *, description: str, pattern: str, example: str) -> dict:
    """A path parameter as the document describes it (Flask's ``<name>`` gives only its name)."""
    return {"in": "path", "name": name, "description": description,
            "schema": {"type": "string", "pattern": pattern, "example": example}}


def object_kind(name: str):
    """The ``object`` field every answer starts with: which of the objects it is."""
    return fields.String(required=True, metadata={"enum": [name]})


class ErrorBodySchema(Schema):
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                         metadata={"description": "Each field that was refused, with why"})


class ErrorSchema(Schema):
    """Every 4xx of the API: ``{"error": {"message": ..., "fields": {field: [messages]}}}``."""

    error = fields.Nested(ErrorBodySchema, required=True)


class PlanSchema(Schema):
    """``api_objects.plan_object``."""

    object = object_kind("plan")
    code = fields.String(required=True)
    name = fields.String(required=True)
    interval = fields.String(required=True, metadata={"enum": ["month", "year"]})
    price = fields.Integer(required=True, metadata={"description": "In minor units (cents)"})
    currency = fields.String(required=True)
    self_serve = fields.Boolean(required=True)


class ListSchema(Schema):
    """What a list answer holds besides ``data``, the objects of one kind that each subclass names."""

    object = object_kind("list")


class PlanListSchema(ListSchema):
    data = fields.List(fields.Nested(PlanSchema), required=True)


def _moment(**kwargs):
    """An ISO 8601 time in UTC, as ``api_objects.iso`` writes it."""
    return fields.String(metadata={"format": "date-time", **kwargs.pop("metadata", {})}, **kwargs)


def _optional(field_class=fields.String, **kwargs):
    return field_class(required=True, allow_none=True, **kwargs)


SUBSCRIPTION_STATUSES = ["active", "past_due", "suspended", "canceled"]


class AddressSchema(Schema):
    line1 = fields.String(required=True)
    line2 = fields.String(required=True)
    city = fields.String(required=True)
    postal_code = fields.String(required=True)
    region = fields.String(required=True)
    country = fields.String(required=True)


class AccountSchema(Schema):
    """``api_objects.account_object``."""

    object = object_kind("account")
    external_id = fields.String(required=True)
    name = fields.String(required=True)
    billing_email = fields.String(required=True)
    address = fields.Nested(AddressSchema, required=True)
    vat_number = fields.String(required=True)
    currency = fields.String(required=True)
    subscription_status = fields.String(required=True, metadata={"enum": SUBSCRIPTION_STATUSES + ["none"]})
    created_at = _moment(required=True)


class UserSchema(Schema):
    """``api_objects.user_object``."""

    object = object_kind("user")
    id = fields.String(required=True)
    account = _optional()
    email = fields.String(required=True)
    name = fields.String(required=True)
    password_login = fields.Boolean(required=True)
    created_at = _moment(required=True)


class SubscriptionSchema(Schema):
    """``api_objects.subscription_object``."""

    object = object_kind("subscription")
    id = fields.String(required=True)
    account = _optional()
    plan = fields.String(required=True)
    status = fields.String(required=True, metadata={"enum": SUBSCRIPTION_STATUSES})
    current_period_start = _moment(required=True)
    current_period_end = _moment(required=True)
    trial_end = _moment(required=True, allow_none=True)
    cancel_at_period_end = fields.Boolean(required=True)
    cancel_at = _moment(required=True, allow_none=True)
    scheduled_plan = _optional()
    canceled_at = _moment(required=True, allow_none=True)
    created_at = _moment(required=True)


class SubscriptionListSchema(ListSchema):
    data = fields.List(fields.Nested(SubscriptionSchema), required=True)


class EntitlementsSchema(Schema):
    """``api_objects.entitlements_object``: the same answer as ``paid_access()``."""

    object = object_kind("entitlements")
    account = _optional()
    paid_access = fields.Boolean(required=True)
    status = fields.String(required=True, metadata={"enum": SUBSCRIPTION_STATUSES + ["none"]})
    reason = fields.String(required=True)
    plan = _optional()
    current_period_end = _moment(required=True, allow_none=True)


class InvoiceSchema(Schema):
    """``api_objects.invoice_object``; amounts in minor units of ``currency``."""

    object = object_kind("invoice")
    id = fields.String(required=True)
    number = _optional()
    account = _optional()
    status = fields.String(required=True, metadata={"enum": ["draft", "open", "paid", "void"]})
    currency = fields.String(required=True)
    subtotal = fields.Integer(required=True)
    credit_applied = fields.Integer(required=True)
    tax = fields.Integer(required=True)
    total = fields.Integer(required=True)
    amount_paid = fields.Integer(required=True)
    amount_due = fields.Integer(required=True)
    amount_refunded = fields.Integer(required=True)
    period_start = _moment(required=True, allow_none=True)
    period_end = _moment(required=True, allow_none=True)
    issued_at = _moment(required=True, allow_none=True)
    due_at = _moment(required=True, allow_none=True)
    paid_at = _moment(required=True, allow_none=True)
    pdf_url = _optional(metadata={"description": "The invoice's PDF in the portal (the customer logs in)"})


class InvoiceListSchema(ListSchema):
    data = fields.List(fields.Nested(InvoiceSchema), required=True)
    has_more = fields.Boolean(required=True)
    next_cursor = _optional(metadata={"description": "Pass as ?cursor= for the next page"})
