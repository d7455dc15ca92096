"""The sandbox's test-only controls besides its pages' choices: a refund made by hand in its "dashboard",
and what tests and the sandbox's own pages read from its books."""
from __future__ import annotations

import secrets

from sqlalchemy import select

from ...models import SandboxObject
from ..gateway import ProcessorError, RefundResult
from . import refunds
from .books import Books


def dashboard_refund(books: Books, payment_id_or_charge_id: str, amount_cents: int | None) -> RefundResult:
    """A refund made outside the portal: the portal learns of it only from the ``charge.refunded`` event,
    as with Stripe's dashboard. Without an amount, whatever is left of the payment."""
    if amount_cents is None:
        amount_cents = refunds.unrefunded(books, payment_id_or_charge_id)
    return refunds.refund(books, payment_id_or_charge_id, amount_cents, f"dashboard-{secrets.token_hex(8)}", {})


def count_charges(books: Books, *, status: str | None) -> int:
    with books.reading() as session:
        rows = session.scalars(select(SandboxObject).where(SandboxObject.kind == "payment_intent")).all()
        return sum(1 for r in rows if status is None or r.data.get("status") == status)


def object_data(books: Books, object_id: str) -> dict:
    """The sandbox's own record of an object, whatever its kind."""
    with books.reading() as session:
        obj = session.get(SandboxObject, object_id)
        if obj is None:
            raise ProcessorError(f"No such object: {object_id}", code="resource_missing")
        return dict(obj.data)
