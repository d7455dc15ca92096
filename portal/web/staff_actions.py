"""Staff actions on one account: refunds, credits, void, retry payment, resend, wire transfers.

Each form posts here and works without JavaScript: a 303 back to the console's account page, or that page
again with the errors next to their fields. HTMX gets the page's ``actions`` block (the Billing actions
panel) with a toast. Customers get 404 on every route, as on every staff page.
"""
from __future__ import annotations

from flask import Blueprint

from ..billing.collecting import collection, credits, refunds
from ..billing.collecting import invoice_actions
from ..errors import DomainError
from ..models import utcnow
from .context import actor, database, db, gateway, request_key, retry_policy, settings
from .staff import render_account
from .staff_answers import PANEL, alert, answered, form_values, refused
from .staff_access import staff_required

bp = Blueprint("staff_actions", __name__, url_prefix="/staff/accounts/<int:account_id>")

@bp.get("/actions")
@staff_required
def panel(account_id: int):
    """The action panel of an account (refunds, credits, void, retry, resend, wire transfer)."""
    return render_account(account_id, block=PANEL)


@bp.post("/credits")
@staff_required
def grant_credit(account_id: int):
    """Grant account credit (amount and reason required); used first by the next invoices."""
    values = form_values("amount", "reason")
    try:
        granted = credits.grant_entered_credit(db(), account_id, amount=values["amount"], reason=values["reason"],
                                               actor=actor(), now=utcnow(), max_cents=settings().max_amount_cents)
    except DomainError as exc:
        return refused(account_id, "credit", exc, values)
    return answered(account_id, granted.message)


@bp.post("/invoices/<int:invoice_id>/refund")
@staff_required
def refund(account_id: int, invoice_id: int):
    """Refund a paid invoice, fully or partly, to the original payment or as account credit."""
    values = form_values("amount", "reason", "destination")
    try:
        made = refunds.refund_entered_amount(database(), gateway(), account_id, invoice_id, amount=values["amount"],
                                             max_cents=settings().max_amount_cents, reason=values["reason"],
                                             destination=values["destination"], actor=actor(), now=utcnow(),
                                             request_key=request_key())
    except DomainError as exc:
        return refused(account_id, f"refund-{invoice_id}", exc, values)
    return answered(account_id, made.message)


@bp.post("/invoices/<int:invoice_id>/void")
@staff_required
def void(account_id: int, invoice_id: int):
    """Void an Open invoice (reason required)."""
    values = form_values("reason")
    try:
        voided = invoice_actions.void_invoice(database(), gateway(), account_id, invoice_id, reason=values["reason"],
                                              actor=actor(), now=utcnow())
    except DomainError as exc:
        return refused(account_id, f"void-{invoice_id}", exc, values)
    return answered(account_id, voided.message)


@bp.post("/invoices/<int:invoice_id>/retry")
@staff_required
def retry(account_id: int, invoice_id: int):
    """Charge an Open invoice now with the account's default card."""
    form = f"retry-{invoice_id}"
    try:
        outcome = collection.retry_invoice_payment(database(), gateway(), account_id, invoice_id, actor=actor(),
                                                   now=utcnow(), policy=retry_policy())
    except DomainError as exc:
        return refused(account_id, form, exc, {})
    if outcome.failed:
        # 402 Payment Required: the charge was made and declined (or needs the customer's 3-D Secure).
        return alert(account_id, outcome.message, status=402)
    return answered(account_id, outcome.message)


@bp.post("/invoices/<int:invoice_id>/resend")
@staff_required
def resend(account_id: int, invoice_id: int):
    """E-mail the invoice to the account's billing e-mail again."""
    resent = invoice_actions.resend_invoice(db(), account_id, invoice_id, actor=actor(), request_key=request_key(),
                                            now=utcnow())
    return answered(account_id, resent.message)


@bp.post("/invoices/<int:invoice_id>/wire")
@staff_required
def wire(account_id: int, invoice_id: int):
    """Record a payment received by wire transfer (reference and date required): the invoice becomes Paid."""
    values = form_values("reference", "received_on")
    try:
        paid = collection.record_wire_payment(database(), gateway(), account_id, invoice_id,
                                              reference=values["reference"], received_on=values["received_on"],
                                              actor=actor(), now=utcnow())
    except DomainError as exc:
        return refused(account_id, f"wire-{invoice_id}", exc, values)
    return answered(account_id, paid.message)
