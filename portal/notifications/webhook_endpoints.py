"""The product's webhook endpoints: created with a signing secret shown once, listed, deleted. Used by
``portal webhooks`` and ``/api/v1/webhook-endpoints`` alike; each call is one transaction."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ..errors import InvalidInput, NotFound
from ..models import WebhookDelivery, WebhookEndpoint
from .webhooks import ALL_EVENTS, EVENT_TYPES, new_signing_secret

URL_MAX = 500


@dataclass(frozen=True)
class CreatedEndpoint:
    endpoint: WebhookEndpoint
    secret: str  # the only time it is handed out; signatures are checked with it


def _check(url: str, event_types: list[str]) -> tuple[str, list[str]]:
    errors = {}
    url = (url or "").strip()
    parts = urlsplit(url) if url else None
    if not url:
        errors["url"] = "Enter the URL that receives the events."
    elif len(url) > URL_MAX:
        errors["url"] = f"Use at most {URL_MAX} characters."
    elif parts.scheme not in ("http", "https") or not parts.hostname:
        errors["url"] = "Use an http:// or https:// URL."
    types = sorted({t.strip() for t in event_types or [] if t and t.strip()}) or [ALL_EVENTS]
    unknown = [t for t in types if t != ALL_EVENTS and t not in EVENT_TYPES]
    if unknown:
        errors["event_types"] = (f"Unknown event type {', '.join(unknown)}; use {', '.join(EVENT_TYPES)} "
                                 f"or {ALL_EVENTS} for all.")
    if errors:
        raise InvalidInput(errors)
    return url, types


def create_endpoint(session: Session, *, url: str, event_types: list[str] | None, now: datetime) -> CreatedEndpoint:
    """Start sending events (all of them, unless ``event_types`` names some) to ``url``, from the next one on."""
    url, types = _check(url, event_types or [])
    secret = new_signing_secret()
    endpoint = WebhookEndpoint(url=url, event_types=types, secret=secret, created_at=now)
    session.add(endpoint)
    session.commit()
    return CreatedEndpoint(endpoint, secret)


def list_endpoints(session: Session) -> list[WebhookEndpoint]:
    return list(session.scalars(select(WebhookEndpoint).where(WebhookEndpoint.disabled_at.is_(None))
                                .order_by(WebhookEndpoint.id)))


def delete_endpoint(session: Session, endpoint_id: int, *, now: datetime) -> None:
    """Stop sending to an endpoint. Its row stays (its deliveries point at it); what it had not received yet
    is given up, and remains readable from ``GET /api/v1/events``."""
    endpoint = session.get(WebhookEndpoint, endpoint_id)
    if endpoint is None or endpoint.disabled_at is not None:
        raise NotFound("No such webhook endpoint.")
    endpoint.disabled_at = now
    session.execute(update(WebhookDelivery)
                    .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
                    .values(status="failed", last_result="endpoint deleted"))
    session.commit()
