"""``/api/v1/webhook-endpoints`` (where the product hears about changes) and ``/api/v1/events`` (what it
may have missed), over ``notifications/webhook_endpoints.py`` and ``notifications/webhooks.py``."""
from __future__ import annotations

import re

from marshmallow import Schema, fields, validate

from ...api_objects import webhook_endpoint_object
from ...errors import NotFound
from ...models import utcnow
from ...notifications import webhook_endpoints, webhooks
from ..context import db, settings
from .blueprint import api_blueprint
from .schemas import ListSchema, Text, object_kind

bp = api_blueprint("webhooks", __name__,
                   description="Webhooks: signed POSTs of each event to the product, and the events to catch up on.")

ENDPOINT_ID = re.compile(r"we_([1-9][0-9]{0,9})")
EVENT_TYPE = validate.OneOf((*webhooks.EVENT_TYPES, webhooks.ALL_EVENTS))


class EndpointCreateSchema(Schema):
    url = Text(max_length=webhook_endpoints.URL_MAX, required=True,
               metadata={"description": "An http:// or https:// URL that receives the POSTs"})
    event_types = fields.List(fields.String(validate=EVENT_TYPE), load_default=list,
                              validate=validate.Length(max=len(webhooks.EVENT_TYPES) + 1),
                              metadata={"description": "The event types to send; all of them when empty or ['*']"})


class EndpointSchema(Schema):
    """``api_objects.webhook_endpoint_object``."""

    object = object_kind("webhook_endpoint")
    id = fields.String(required=True)
    url = fields.String(required=True)
    event_types = fields.List(fields.String(), required=True)
    created_at = fields.String(required=True, allow_none=True)
    secret = fields.String(metadata={"description": "whsec_…: only in the answer that creates the endpoint"})


class EndpointListSchema(ListSchema):
    data = fields.List(fields.Nested(EndpointSchema), required=True)


class EventsQuerySchema(Schema):
    after = Text(max_length=40, load_default=None,
                 metadata={"description": "The id of the last event you have; leave out to start at the first"})
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class EventObjectSchema(Schema):
    object = fields.Dict(required=True, metadata={"description": "The object as the API returns it"})


class EventSchema(Schema):
    """``notifications.webhooks.event_document``: what a delivery's body holds too."""

    id = fields.String(required=True)
    object = object_kind("event")
    type = fields.String(required=True, metadata={"enum": list(webhooks.EVENT_TYPES)})
    created = fields.String(required=True, allow_none=True)
    data = fields.Nested(EventObjectSchema, required=True)


class EventListSchema(ListSchema):
    data = fields.List(fields.Nested(EventSchema), required=True)
    has_more = fields.Boolean(required=True)


@bp.route("/webhook-endpoints", methods=["POST"])
@bp.arguments(EndpointCreateSchema)
@bp.response(201, EndpointSchema)
def create_endpoint(values):
    """Start sending events to a URL; the answer holds the signing secret, shown this once."""
    created = webhook_endpoints.create_endpoint(db(), url=values["url"], event_types=values["event_types"],
                                                now=utcnow())
    return webhook_endpoint_object(created.endpoint, secret=created.secret)


@bp.route("/webhook-endpoints", methods=["GET"])
@bp.response(200, EndpointListSchema)
def list_endpoints():
    """The endpoints events are sent to (without their secrets)."""
    return {"object": "list", "data": [webhook_endpoint_object(e) for e in webhook_endpoints.list_endpoints(db())]}


@bp.route("/webhook-endpoints/<endpoint_id>", methods=["DELETE"])
@bp.response(204)
@bp.alt_response(404, description="No webhook endpoint has this id")
def delete_endpoint(endpoint_id):
    """Stop sending to an endpoint; what it has not received yet stays readable from /api/v1/events."""
    found = ENDPOINT_ID.fullmatch(endpoint_id)
    if found is None:
        raise NotFound("No such webhook endpoint.")
    webhook_endpoints.delete_endpoint(db(), int(found.group(1)), now=utcnow())
    return ""


@bp.route("/events", methods=["GET"])
@bp.arguments(EventsQuerySchema, location="query")
@bp.response(200, EventListSchema)
def list_events(query):
    """Every event, oldest first, after the one named by ``after``: page on with the last id you got."""
    rows, has_more = webhooks.events_after(db(), after=query["after"], limit=query["limit"])
    base_url = settings().base_url
    return {"object": "list", "data": [webhooks.event_document(e, base_url=base_url) for e in rows],
            "has_more": has_more}
