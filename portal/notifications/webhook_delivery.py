"""Sending webhook deliveries to the product: signed POSTs, retried with backoff until a 2xx, at least once.

Written first: a delivery is claimed by one conditional UPDATE that counts the attempt and moves its next
try to the retry time, and that is committed before the POST. So a crash during the POST leaves a delivery
that is simply tried again at its retry time (at least once; receivers de-duplicate on the event id), and
two workers never POST the same delivery at the same time: the second one's UPDATE finds the delivery no
longer due and claims nothing. This works alike on SQLite and PostgreSQL (where the UPDATE waits for the
first worker's row lock and then re-checks the condition).
"""
from __future__ import annotations

import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import select, update

from ..db import Database
from ..models import WebhookDelivery, WebhookEndpoint
from .webhooks import SIGNATURE_HEADER, event_body, signature

# Waits after the 1st, 2nd, ... failed attempt. About 2.9 days in all, then the delivery is given up as
# failed (the event stays readable from GET /api/v1/events).
BACKOFF = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
           timedelta(hours=6), timedelta(hours=12), timedelta(hours=24), timedelta(hours=24))
MAX_ATTEMPTS = len(BACKOFF) + 1


def retry_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th try a delivery is tried again (the last try's lease as well)."""
    return BACKOFF[min(attempts, len(BACKOFF)) - 1]


@dataclass
class DeliveryStats:
    delivered: int = 0
    retrying: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    attempt: int
    url: str
    secret: str
    body: bytes


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # urllib would turn a redirected POST into a GET without the body; a redirect is an answer to fix, not follow.
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirects)


def post(url: str, body: bytes, headers: dict, timeout: float) -> str:
    """POST and say what happened: ``HTTP 200``, ``HTTP 500``, ``timed out``, or why it could not connect."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return f"HTTP {response.status}"
    except urllib.error.HTTPError as error:
        return f"HTTP {error.code}"
    except (TimeoutError, socket.timeout):
        return "timed out"
    except urllib.error.URLError as error:
        reason = error.reason
        return "timed out" if isinstance(reason, (TimeoutError, socket.timeout)) else f"could not connect: {reason}"
    except (OSError, ValueError) as error:
        return f"could not connect: {error}"


def _succeeded(result: str) -> bool:
    return result.startswith("HTTP 2")


def claim(database: Database, delivery_id: int, *, base_url: str, now: datetime) -> Claim | None:
    """Count one attempt of a due delivery and commit it before anything is sent; None when another worker
    has it (or it is no longer due, or its endpoint was deleted)."""
    with database.session() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        if delivery is None or delivery.status != "pending":
            return None
        attempt = delivery.attempts + 1
        claimed = session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == "pending",
                   WebhookDelivery.attempts == delivery.attempts, WebhookDelivery.next_attempt_at <= now)
            .values(attempts=attempt, next_attempt_at=now + retry_delay(attempt))
            .execution_options(synchronize_session=False)).rowcount
        if claimed != 1:
            session.rollback()
            return None
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
        if endpoint.disabled_at is not None:
            session.execute(update(WebhookDelivery).where(WebhookDelivery.id == delivery_id)
                            .values(status="failed", last_result="endpoint deleted"))
            session.commit()
            return None
        result = Claim(delivery_id, attempt, endpoint.url, endpoint.secret,
                       event_body(delivery.event, base_url=base_url))
        session.commit()
        return result


def record(database: Database, claimed: Claim, result: str, *, now: datetime) -> str | None:
    """Write the outcome of an attempt: delivered, tried again at the time the claim set, or given up."""
    with database.session() as session:
        delivery = session.get(WebhookDelivery, claimed.delivery_id)
        if delivery.status != "pending" or delivery.attempts != claimed.attempt:
            return None  # this attempt's lease ran out and another one was made, which records its own
        delivery.last_result = result[:300]
        if _succeeded(result):
            delivery.status, delivery.delivered_at = "delivered", now
        elif claimed.attempt >= MAX_ATTEMPTS:
            delivery.status = "failed"
        session.commit()
        return "retrying" if delivery.status == "pending" else delivery.status


def deliver_pending(database: Database, *, base_url: str, timeout: float, now: datetime, batch: int = 100,
                    send: Callable[[str, bytes, dict, float], str] = post,
                    clock: Callable[[], float] = time.time) -> DeliveryStats:
    """Send every delivery due at ``now``, oldest event first.

    The signature's timestamp is the real moment of sending (``clock``), not ``now``: a receiver compares it
    with its own clock to refuse replays, and it is never stored."""
    stats = DeliveryStats()
    while True:
        with database.session() as session:
            due = list(session.scalars(select(WebhookDelivery.id).where(
                WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
                .order_by(WebhookDelivery.event_id, WebhookDelivery.id).limit(batch)))
        for delivery_id in due:
            claimed = claim(database, delivery_id, base_url=base_url, now=now)
            if claimed is None:
                continue
            headers = {"Content-Type": "application/json", "User-Agent": "billing-portal-webhooks",
                       SIGNATURE_HEADER: signature(claimed.secret, claimed.body, timestamp=int(clock()))}
            outcome = record(database, claimed, send(claimed.url, claimed.body, headers, timeout), now=now)
            if outcome is not None:
                setattr(stats, outcome, getattr(stats, outcome) + 1)
        # Every delivery looked at is now delivered, failed or due later (by this worker or another), so
        # the next batch holds only ones not looked at yet: a backlog is worked off in one pass.
        if len(due) < batch:
            return stats
