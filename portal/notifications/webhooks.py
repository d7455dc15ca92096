"""Webhook events for the product in front of the portal: writing them (with one delivery per endpoint that
wants them), the body each delivery sends, and its signature.

An event is written in the caller's transaction, like an outbox e-mail: it exists exactly when the change it
describes does. The worker sends it (``webhook_delivery``); ``GET /api/v1/events`` reads it back.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from datetime import datetime

from sqlalchemy import event as orm_event, insert, select
from sqlalchemy.orm import Session

from ..errors import InvalidInput
from ..models import WebhookDelivery, WebhookEndpoint, WebhookEvent

EVENT_TYPES = (
    "subscription.created", "subscription.updated",
    "invoice.issued", "invoice.paid", "invoice.payment_failed", "invoice.voided",
    "refund.created", "entitlements.updated",
)
ALL_EVENTS = "*"
SIGNATURE_HEADER = "Portal-Signature"


def new_event_id() -> str:
    return f"evt_{secrets.token_hex(12)}"


def wants(endpoint: WebhookEndpoint, event_type: str) -> bool:
    types = endpoint.event_types or [ALL_EVENTS]
    return ALL_EVENTS in types or event_type in types


def write_event(session: Session, *, type: str, payload: dict, account_id: int | None,
                now: datetime) -> WebhookEvent:
    """Add an event and a pending delivery to every live endpoint that listens for its type, due at once.

    Endpoints are read with a plain query, so this may run while the session is flushing (the billing
    changes write their events from a flush listener)."""
    assert type in EVENT_TYPES, type
    event = WebhookEvent(public_id=new_event_id(), type=type, account_id=account_id, payload=payload,
                         created_at=now)
    session.add(event)
    for endpoint in _live_endpoints(session):
        if wants(endpoint, type):
            session.add(WebhookDelivery(event=event, endpoint_id=endpoint.id, status="pending", attempts=0,
                                        next_attempt_at=now))
    return event


def write_events(session: Session, events: list[tuple[str, int | None, dict, datetime]]) -> None:
    """``write_event`` for several events (type, account id, payload, moment), in one INSERT for the events
    and one for their deliveries instead of a statement per row (the billing flush listener's events: a
    renewal batch writes several per invoice). Rows are written in the order given, so ids keep that order.

    Plain Core statements, so this may run while the session is flushing; nothing is added to the session."""
    if not events:
        return
    rows = []
    for type_, account_id, payload, now in events:
        assert type_ in EVENT_TYPES, type_
        rows.append({"public_id": new_event_id(), "type": type_, "account_id": account_id, "payload": payload,
                     "created_at": now})
    session.execute(insert(WebhookEvent.__table__), rows)
    endpoints = _live_endpoints(session)
    wanted = [(row, endpoint.id) for row in rows for endpoint in endpoints if wants(endpoint, row["type"])]
    if not wanted:
        return
    ids = dict(session.execute(select(WebhookEvent.public_id, WebhookEvent.id).where(
        WebhookEvent.public_id.in_({row["public_id"] for row, _ in wanted}))).all())
    session.execute(insert(WebhookDelivery.__table__), [
        {"event_id": ids[row["public_id"]], "endpoint_id": endpoint_id, "status": "pending", "attempts": 0,
         "next_attempt_at": row["created_at"], "last_result": "", "delivered_at": None}
        for row, endpoint_id in wanted])


ENDPOINTS = "webhooks.live_endpoints"  # session.info key: the live endpoints, read once per transaction


def _live_endpoints(session: Session) -> list[WebhookEndpoint]:
    # Read once per transaction rather than once per event: a renewal batch writes several events per
    # invoice. A change to an endpoint in the same transaction forgets the list (``_endpoint_changed``).
    if ENDPOINTS not in session.info:
        session.info[ENDPOINTS] = list(session.scalars(
            select(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_(None)).order_by(WebhookEndpoint.id)))
    return session.info[ENDPOINTS]


@orm_event.listens_for(Session, "before_flush")
def _endpoint_changed(session: Session, flush_context, instances) -> None:
    if ENDPOINTS in session.info and any(isinstance(obj, WebhookEndpoint)
                                         for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info.pop(ENDPOINTS, None)


@orm_event.listens_for(Session, "after_transaction_end")
def _forget_endpoints(session: Session, transaction) -> None:
    if transaction.parent is None:
        session.info.pop(ENDPOINTS, None)


def _absolute(payload: dict, base_url: str) -> dict:
    """Events keep links inside the portal as paths (the flush that writes them knows no settings); they are
    made absolute with ``PORTAL_BASE_URL`` wherever an event leaves the portal."""
    link = payload.get("pdf_url")
    if isinstance(link, str) and link.startswith("/"):
        return {**payload, "pdf_url": base_url.rstrip("/") + link}
    return payload


def event_document(event: WebhookEvent, *, base_url: str) -> dict:
    """The event as the product receives it, in a delivery and from ``GET /api/v1/events`` alike."""
    payload = dict(event.payload)
    previous = payload.pop("previous_attributes", None)  # a subscription.updated names what changed
    data = {"object": _absolute(payload, base_url)}
    if previous:
        data["previous_attributes"] = previous
    return {"id": event.public_id, "object": "event", "type": event.type,
            "created": event.created_at.isoformat() if event.created_at else None, "data": data}


def event_body(event: WebhookEvent, *, base_url: str) -> bytes:
    """The exact bytes a delivery POSTs (and signs): compact JSON with sorted keys, the same on every retry."""
    return json.dumps(event_document(event, base_url=base_url), separators=(",", ":"), sort_keys=True).encode()


def new_signing_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def signature(secret: str, body: bytes, *, timestamp: int) -> str:
    """``t=<unix>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, Stripe's scheme: the timestamp is signed too, so a
    receiver can refuse an old delivery replayed at it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def events_after(session: Session, *, after: str | None, limit: int) -> tuple[list[WebhookEvent], bool]:
    """Events oldest first, from just after the event ``after`` (its ``evt_`` id), for a product catching up
    on what it missed; and whether more follow. Ordered by the integer id, the order they were written in."""
    start = 0
    if after:
        start = session.scalar(select(WebhookEvent.id).where(WebhookEvent.public_id == after))
        if start is None:
            raise InvalidInput({"after": "No event has this id; use the id of an event you received, or leave it out."})
    rows = list(session.scalars(select(WebhookEvent).where(WebhookEvent.id > start)
                                .order_by(WebhookEvent.id).limit(limit + 1)))
    return rows[:limit], len(rows) > limit
