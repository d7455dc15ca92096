"""Refunds as Stripe makes them: never more than is left unrefunded of a payment, once per key, each
followed by a ``charge.refunded`` event carrying every refund of the charge."""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from ...models import SandboxObject
from ..gateway import ProcessorError, RefundResult
from .books import Books
from .events import enqueue


def refund(books: Books, payment_id_or_charge_id: str, amount_cents: int, idempotency_key: str,
           metadata: dict) -> RefundResult:
    def create(session):
        pi = payment_for(session, payment_id_or_charge_id)
        if pi.data["status"] != "succeeded" or not pi.data.get("charge"):
            raise ProcessorError("This payment did not succeed, so there is nothing to refund.",
                                 code="charge_not_refundable")
        refunded = int(pi.data.get("amount_refunded") or 0)
        if amount_cents <= 0 or amount_cents > pi.data["amount"] - refunded:
            raise ProcessorError("The refund is larger than what is left to refund of this payment.",
                                 code="amount_too_large")
        now = books.timestamp()
        refund = books.new(session, "re", "refund", {
            "payment_intent": pi.id, "charge": pi.data["charge"], "amount": amount_cents,
            "currency": pi.data["currency"], "status": "succeeded",
            "metadata": {k: str(v) for k, v in (metadata or {}).items()}, "created": now})
        pi.data = {**pi.data, "amount_refunded": refunded + amount_cents,
                   "refunds": [*(pi.data.get("refunds") or []), refund.id]}
        session.flush()
        enqueue(session, books, "charge.refunded", _charge_payload(session, books, pi), deliver_at=now)
        return {"id": refund.id}

    result = books.idempotent(idempotency_key, create)
    with books.reading() as session:
        return _refund(books.get(session, result["id"], "refund"))


def list_refunds(books: Books, payment_id_or_charge_id: str) -> list[RefundResult]:
    with books.reading() as session:
        pi = payment_for(session, payment_id_or_charge_id, lock=False)
        return [_refund(books.get(session, rid, "refund")) for rid in pi.data.get("refunds") or []]


def unrefunded(books: Books, payment_id_or_charge_id: str) -> int:
    """What is left to refund of a payment, in minor units."""
    with books.reading() as session:
        pi = payment_for(session, payment_id_or_charge_id, lock=False)
        return pi.data["amount"] - int(pi.data.get("amount_refunded") or 0)


def payment_for(session: Session, payment_id_or_charge_id: str, *, lock: bool = True) -> SandboxObject:
    """The payment intent of a payment id or of one of its charge ids (refunds accept either)."""
    if payment_id_or_charge_id.startswith("pi_"):
        query = select(SandboxObject).where(SandboxObject.id == payment_id_or_charge_id,
                                            SandboxObject.kind == "payment_intent")
        pi = session.scalar(query.with_for_update() if lock else query)
    else:
        rows = session.scalars(select(SandboxObject).where(SandboxObject.kind == "payment_intent")).all()
        match = next((r for r in rows if r.data.get("charge") == payment_id_or_charge_id), None)
        pi = None
        if match is not None:
            query = select(SandboxObject).where(SandboxObject.id == match.id)
            pi = session.scalar(query.with_for_update() if lock else query)
    if pi is None:
        raise ProcessorError(f"No such payment: {payment_id_or_charge_id}", code="resource_missing")
    return pi


def _charge_payload(session: Session, books: Books, pi: SandboxObject) -> dict:
    d = pi.data
    refunds = [_refund_payload(books.get(session, rid, "refund")) for rid in d.get("refunds") or []]
    refunded = int(d.get("amount_refunded") or 0)
    return {"id": d["charge"], "object": "charge", "payment_intent": pi.id, "amount": d["amount"],
            "amount_refunded": refunded, "refunded": refunded >= d["amount"], "currency": d["currency"],
            "metadata": d.get("metadata") or {},
            "refunds": {"object": "list", "data": list(reversed(refunds)), "has_more": False}}


def _refund_payload(obj: SandboxObject) -> dict:
    d = obj.data
    return {"id": obj.id, "object": "refund", "amount": d["amount"], "currency": d["currency"],
            "charge": d["charge"], "payment_intent": d["payment_intent"], "status": d["status"],
            "metadata": d.get("metadata") or {}, "created": d.get("created")}


def _refund(obj: SandboxObject) -> RefundResult:
    d = obj.data
    return RefundResult(id=obj.id, status=d["status"], amount=d["amount"], currency=d["currency"].upper(),
                        payment_id=d["payment_intent"], charge_id=d["charge"], metadata=dict(d.get("metadata") or {}))
