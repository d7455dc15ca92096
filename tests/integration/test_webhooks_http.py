"""Webhook deliveries over real HTTP to a receiver started by the test: 500 then 200, a receiver that is down
or too slow, the README's verification snippet, and two workers delivering at once (each delivery POSTed once)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from portal.models import WebhookDelivery, WebhookEvent
from portal.notifications.webhook_delivery import BACKOFF, deliver_pending
from portal.notifications.webhook_endpoints import create_endpoint
from portal.notifications.webhooks import write_event

from ..helpers import readme_webhook_verifier, run_concurrently
from .webhook_receiver import WebhookReceiver

T0 = datetime(2030, 6, 1, 12, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # the receiver is local; never send it through a proxy


@pytest.fixture
def receiver():
    server = WebhookReceiver()
    yield server
    server.stop()


def events(session, url: str, count: int = 1) -> tuple[str, list[WebhookEvent]]:
    secret = create_endpoint(session, url=url, event_types=None, now=T0).secret
    made = [write_event(session, type="invoice.paid", account_id=None, now=T0,
                        payload={"object": "invoice", "id": f"inv_{n}", "pdf_url": None}) for n in range(count)]
    session.commit()
    return secret, made


def deliver(database, now, timeout=5.0):
    return deliver_pending(database, base_url="https://billing.example", timeout=timeout, now=now)


def test_a_receiver_answering_500_then_200_gets_the_event_delivered_once_on_the_second_try(database, session,
                                                                                           receiver):
    secret, (event,) = events(session, receiver.url)
    receiver.statuses = [500]
    assert deliver(database, T0).retrying == 1
    assert deliver(database, T0 + BACKOFF[0]).delivered == 1
    assert deliver(database, T0 + timedelta(days=1)).delivered == 0
    assert receiver.event_ids() == [event.public_id, event.public_id]  # the same event id both times
    first, second = receiver.received
    assert first["body"] == second["body"]
    verify = readme_webhook_verifier()
    for got in receiver.received:
        assert verify(secret, got["body"], got["headers"]["Portal-Signature"])
        assert not verify("whsec_someone-else", got["body"], got["headers"]["Portal-Signature"])
        assert not verify(secret, got["body"] + b" ", got["headers"]["Portal-Signature"])
    assert json.loads(second["body"])["data"]["object"]["id"] == "inv_0"
    session.expire_all()
    assert session.scalars(select(WebhookDelivery.status)).all() == ["delivered"]


def test_the_snippet_refuses_an_old_signature_and_garbage(database, session, receiver):
    from portal.notifications.webhooks import signature

    verify = readme_webhook_verifier()
    assert not verify("whsec_x", b"{}", signature("whsec_x", b"{}", timestamp=1_000_000_000))  # 2001: replayed
    assert not verify("whsec_x", b"{}", "nonsense")
    assert not verify("whsec_x", b"{}", "t=abc,v1=00")


def test_a_receiver_that_is_down_gets_the_event_later_not_never(database, session, receiver):
    port = receiver.port
    receiver.stop()  # the product is down
    _, (event,) = events(session, receiver.url)
    assert deliver(database, T0).retrying == 1
    session.expire_all()
    assert session.scalar(select(WebhookDelivery.last_result)).startswith("could not connect")
    back = WebhookReceiver(port=port)  # the product is back, at the same address
    try:
        assert deliver(database, T0 + BACKOFF[0]).delivered == 1
        assert back.event_ids() == [event.public_id]
    finally:
        back.stop()


def test_a_receiver_slower_than_the_timeout_is_retried(database, session):
    slow = WebhookReceiver(hang_seconds=10)
    try:
        _, (event,) = events(session, slow.url)
        assert deliver(database, T0, timeout=0.3).retrying == 1
        session.expire_all()
        assert session.scalar(select(WebhookDelivery.last_result)) == "timed out"
        slow.hang_seconds = 0
        slow.release.set()
        assert deliver(database, T0 + BACKOFF[0]).delivered == 1
        assert slow.event_ids() == [event.public_id, event.public_id]
    finally:
        slow.stop()


def test_two_workers_delivering_at_once_post_each_delivery_once(database, session, receiver):
    _, made = events(session, receiver.url, count=30)
    outcomes = run_concurrently(lambda n: deliver(database, T0), 2)
    assert [o.error for o in outcomes] == [None, None]
    assert sum(o.value.delivered for o in outcomes) == 30
    assert sorted(receiver.event_ids()) == sorted(e.public_id for e in made)  # each one once, none twice
    session.expire_all()
    assert set(session.scalars(select(WebhookDelivery.attempts))) == {1}
