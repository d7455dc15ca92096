"""Sending webhook deliveries: the signature, the backoff schedule, written first, given up after ~3 days."""
from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.models import WebhookDelivery
from portal.notifications import webhook_delivery
from portal.notifications.webhook_delivery import BACKOFF, MAX_ATTEMPTS, deliver_pending
from portal.notifications.webhook_endpoints import create_endpoint
from portal.notifications.webhooks import signature, write_event
from portal.errors import InvalidInput

T0 = datetime(2030, 6, 1, 12, tzinfo=timezone.utc)
BASE = "https://billing.example"


class Receiver:
    """Stands in for the product's receiver: answers from a script and keeps what it was sent."""

    def __init__(self, *answers: str):
        self.answers, self.calls = list(answers), []

    def __call__(self, url, body, headers, timeout):
        self.calls.append({"url": url, "body": body, "headers": headers, "timeout": timeout})
        return self.answers.pop(0) if self.answers else "HTTP 200"


@pytest.fixture
def endpoint(session):
    return create_endpoint(session, url="https://product.example/hooks", event_types=None, now=T0)


@pytest.fixture
def delivery(session, endpoint):
    event = write_event(session, type="invoice.paid", account_id=None, now=T0,
                        payload={"object": "invoice", "id": "inv_1", "pdf_url": "/billing/invoices/1.pdf"})
    session.commit()
    return session.scalars(select(WebhookDelivery).where(WebhookDelivery.event_id == event.id)).one()


def deliver(database, receiver, now):
    return deliver_pending(database, base_url=BASE, timeout=2.5, now=now, send=receiver, clock=lambda: 1900000000)


def reload(session, delivery) -> WebhookDelivery:
    session.expire_all()
    return session.get(WebhookDelivery, delivery.id)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_with_the_endpoint_secret(database, session, endpoint,
                                                                                       delivery):
    receiver = Receiver()
    deliver(database, receiver, T0)
    (call,) = receiver.calls
    header = call["headers"]["Portal-Signature"]
    timestamp, mac = (part.split("=", 1)[1] for part in header.split(","))
    assert timestamp == "1900000000"
    expected = hmac.new(endpoint.secret.encode(), b"1900000000." + call["body"], hashlib.sha256).hexdigest()
    assert mac == expected and endpoint.secret.startswith("whsec_")
    assert signature("other", call["body"], timestamp=1900000000) != header
    body = json.loads(call["body"])
    assert body["id"] == delivery.event.public_id and body["type"] == "invoice.paid"
    assert body["data"]["object"]["pdf_url"] == f"{BASE}/billing/invoices/1.pdf"
    assert call["url"] == "https://product.example/hooks" and call["timeout"] == 2.5
    assert call["headers"]["Content-Type"] == "application/json"
    assert reload(session, delivery).status == "delivered"


def test_failures_are_retried_on_the_backoff_schedule_and_given_up_after_about_three_days(database, session,
                                                                                        delivery):
    receiver = Receiver(*["HTTP 500"] * MAX_ATTEMPTS)
    now, tried_at = T0, []
    while reload(session, delivery).status == "pending":
        due = reload(session, delivery).next_attempt_at
        assert deliver(database, receiver, due - timedelta(seconds=1)).retrying == 0  # not before it is due
        now = due
        deliver(database, receiver, now)
        tried_at.append(now)
    waits = [later - earlier for earlier, later in zip(tried_at, tried_at[1:])]
    assert waits == list(BACKOFF) and len(tried_at) == MAX_ATTEMPTS
    assert timedelta(days=2, hours=12) < tried_at[-1] - T0 < timedelta(days=3, hours=12)
    final = reload(session, delivery)
    assert final.status == "failed" and final.attempts == MAX_ATTEMPTS and final.last_result == "HTTP 500"
    assert len(receiver.calls) == MAX_ATTEMPTS
    # The same bytes every time, so a receiver can de-duplicate on the event id inside.
    assert len({call["body"] for call in receiver.calls}) == 1


def test_a_500_then_a_200_is_delivered_on_the_second_try(database, session, delivery):
    receiver = Receiver("HTTP 500")
    stats = deliver(database, receiver, T0)
    assert (stats.retrying, stats.delivered) == (1, 0)
    assert reload(session, delivery).last_result == "HTTP 500"
    assert deliver(database, receiver, T0 + timedelta(seconds=59)).delivered == 0
    assert deliver(database, receiver, T0 + BACKOFF[0]).delivered == 1
    done = reload(session, delivery)
    assert (done.status, done.attempts, done.delivered_at) == ("delivered", 2, T0 + BACKOFF[0])
    assert deliver(database, receiver, T0 + timedelta(days=5)).delivered == 0  # never sent again
    assert len(receiver.calls) == 2


def test_the_attempt_is_committed_before_the_post_so_a_crash_during_it_is_retried_later(database, session,
                                                                                        delivery):
    def crash(url, body, headers, timeout):
        # What another connection sees while the POST is in flight: the attempt is already counted.
        with database.session() as other:
            seen = other.get(WebhookDelivery, delivery.id)
            assert (seen.attempts, seen.next_attempt_at) == (1, T0 + BACKOFF[0])
        raise KeyboardInterrupt  # the worker dies mid-POST

    with pytest.raises(KeyboardInterrupt):
        deliver(database, crash, T0)
    assert deliver(database, Receiver(), T0 + timedelta(seconds=30)).delivered == 0  # not twice at once
    assert deliver(database, Receiver(), T0 + BACKOFF[0]).delivered == 1


def test_a_timeout_or_refused_connection_is_a_failure_to_retry(database, session, delivery):
    deliver(database, Receiver("timed out"), T0)
    assert reload(session, delivery).last_result == "timed out"
    deliver(database, Receiver("could not connect: [Errno 111] Connection refused"), T0 + BACKOFF[0])
    again = reload(session, delivery)
    assert again.status == "pending" and again.attempts == 2 and "refused" in again.last_result


def test_a_redirect_is_not_followed_and_counts_as_a_failure(database, session, delivery):
    deliver(database, Receiver("HTTP 302"), T0)
    assert reload(session, delivery).status == "pending"


@pytest.mark.parametrize("url, message", [
    ("", "Enter the URL"), ("ftp://product.example/hooks", "http:// or https://"),
    ("javascript:alert(1)", "http:// or https://"), ("https://", "http:// or https://"),
    ("https://product.example/" + "x" * 500, "at most 500"),
])
def test_endpoint_urls_must_be_http_or_https(session, url, message):
    with pytest.raises(InvalidInput) as refused:
        create_endpoint(session, url=url, event_types=None, now=T0)
    assert message in refused.value.errors["url"]


def test_unknown_event_types_are_refused_by_name(session):
    with pytest.raises(InvalidInput) as refused:
        create_endpoint(session, url="https://product.example/h", event_types=["invoice.paid", "invoice.eaten"],
                        now=T0)
    assert "invoice.eaten" in refused.value.errors["event_types"]


def test_each_endpoint_gets_its_own_random_secret(session):
    secrets = {create_endpoint(session, url="https://p.example/h", event_types=None, now=T0).secret
               for _ in range(3)}
    assert len(secrets) == 3 and all(len(s) > 40 for s in secrets)


def test_the_real_post_reports_a_refused_connection(database):
    assert webhook_delivery.post("http://127.0.0.1:9/", b"{}", {}, 1.0).startswith("could not connect")


def test_a_backlog_larger_than_a_batch_is_worked_off_in_one_pass(database, session, endpoint):
    for n in range(7):
        write_event(session, type="refund.created", account_id=None, now=T0, payload={"object": "refund", "n": n})
    session.commit()
    receiver = Receiver("HTTP 500")
    stats = deliver_pending(database, base_url=BASE, timeout=1, now=T0, batch=3, send=receiver)
    assert (stats.delivered, stats.retrying) == (6, 1) and len(receiver.calls) == 7
    assert [json.loads(c["body"])["data"]["object"]["n"] for c in receiver.calls] == list(range(7))  # oldest first
