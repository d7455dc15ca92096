"""The sandbox's event queue: Stripe-shaped events that the portal fetches and applies with the same
handlers as Stripe's webhooks (the sandbox has no network to send them over)."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...models import SandboxObject
from .books import Books, new_id


def enqueue(session: Session, books: Books, event_type: str, payload: dict, *, deliver_at: int,
            settle_intent: tuple[str, str] | None = None) -> None:
    """Queue an event for ``deliver_at``. ``settle_intent`` (payment id, final status) is a delayed outcome,
    such as a bank confirming later, that becomes true when the event is due."""
    event_id = new_id("evt")
    event = {"id": event_id, "object": "event", "type": event_type, "created": deliver_at,
             "livemode": False, "data": {"object": payload}}
    session.add(SandboxObject(id=event_id, kind="event", created_at=books.clock(), data={
        "event": event, "deliver_at": deliver_at, "delivered": False, "settle_intent": settle_intent}))


def due_events(books: Books, *, now: int) -> list[dict]:
    """Events whose time has come, oldest first. A delayed payment outcome becomes true at that moment,
    before its event is delivered."""
    with books.writing() as session:
        rows = session.scalars(select(SandboxObject).where(SandboxObject.kind == "event")
                               .order_by(SandboxObject.created_at, SandboxObject.id)).all()
        due = [r for r in rows if not r.data["delivered"] and r.data["deliver_at"] <= now]
        # Events queued at one moment of a fixed clock (a ``--now`` run) share their created_at: the one due
        # first was queued first (a checkout's completion before the bank's later answer about it).
        due.sort(key=lambda r: (r.created_at, r.data["deliver_at"]))
        for row in due:
            settle = row.data.get("settle_intent")
            if settle and not row.data.get("settled"):
                _settle_intent(session, books, settle[0], settle[1], row.data["event"]["data"]["object"])
                row.data = {**row.data, "settled": True}
        return [r.data["event"] for r in due]


def mark_delivered(books: Books, event_id: str) -> None:
    with books.writing() as session:
        row = books.get(session, event_id, "event")
        row.data = {**row.data, "delivered": True}


def _settle_intent(session: Session, books: Books, payment_id: str, status: str, payload: dict) -> None:
    """The bank's answer becomes true: for a checkout's bank redirect, or for a debit of a saved bank account
    (whose event carries the failure the bank gave)."""
    pi = books.get(session, payment_id, "payment_intent")
    failed = status == "failed"
    error = payload.get("last_payment_error") or {}
    pi.data = {**pi.data, "status": status, "failure_code": (error.get("code") or "payment_failed") if failed else None,
               "failure_message": (error.get("message") or "The bank did not authorise the payment.") if failed else None,
               "charge": None if failed else new_id("ch")}
    if not failed and payload.get("object") == "checkout.session":
        cs = books.get(session, payload["id"], "checkout_session")
        cs.data = {**cs.data, "payment_status": "paid"}
