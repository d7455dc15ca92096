"""Marshmallow pieces every API route module uses: the error shape, text that refuses NUL bytes, and the
objects of ``portal/api_objects.py`` described for the OpenAPI document (the dicts are built there; these
schemas only say what they hold, so an answer and its description cannot drift apart without the
Schemathesis run failing)."""
from __future__ import annotations

from marshmallow import Schema, ValidationError, fields, validate


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


class ErrorBodySchema(Schema):
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String(), values=fields.List(fields.String()), required=True,
                         metadata={"description": "Each field that was refused, with why"})


class ErrorSchema(Schema):
    """Every 4xx of the API: ``{"error": {"message": ..., "fields": {field: [messages]}}}``."""

    error = fields.Nested(ErrorBodySchema, required=True)


class PaginationQuerySchema(Schema):
    """``?page=&per_page=``: page numbers from 1, at most 100 objects a page."""

    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=100_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class PlanSchema(Schema):
    """``api_objects.plan_object``."""

    object = fields.String(required=True, metadata={"enum": ["plan"]})
    code = fields.String(required=True)
    name = fields.String(required=True)
    interval = fields.String(required=True, metadata={"enum": ["month", "year"]})
    price = fields.Integer(required=True, metadata={"description": "In minor units (cents)"})
    currency = fields.String(required=True)
    self_serve = fields.Boolean(required=True)


class PlanListSchema(Schema):
    object = fields.String(required=True, metadata={"enum": ["list"]})
    data = fields.List(fields.Nested(PlanSchema), required=True)
