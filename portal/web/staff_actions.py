"""Staff actions on one account: refunds, credits, void, retry payment, resend, wire transfers.

Each form posts here and works without JavaScript (303 back to the staff account page, errors next to the
field with 422); HTMX gets the action panel (``templates/staff/_account_actions.html``) re-rendered with a
toast. Customers get 404 on every route, as on every staff page.
"""
from __future__ import annotations

import re
import secrets

from flask import Blueprint, current_app, flash, make_response, redirect, render_template, render_template_string, \
    request, url_for
from markupsafe import Markup
from sqlalchemy import select

from ..billing import credits, refunds, staff_actions
from ..errors import DomainError, InvalidInput, NotFound
from ..billing.invoices import list_invoices
from ..models import Account, Invoice, utcnow
from .context import actor, db, gateway, retry_policy, settings
from .rendering import render_block
from .staff import staff_required

bp = Blueprint("staff_actions", __name__, url_prefix="/staff/accounts/<int:account_id>")

PARTIAL = "staff/_account_actions.html"
# The panel on a page of its own: where a plain (JavaScript-off) form lands when it needs correcting.
PAGE = """{% extends "base.html" %}
{% block title %}Account actions · {{ account.name }}{% endblock %}
{% block content %}
<p><a href="{{ account_page }}">← Back to {{ account.name }}</a></p>
{% include "staff/_account_actions.html" %}
{% endblock %}"""
LISTED_INVOICES = 24
_KEY = re.compile(r"^[0-9a-f]{32}$")


# --- what templates may ask for -----------------------------------------------------------------

@bp.app_template_global("staff_account_actions")
def _staff_account_actions(account: Account, invoices) -> staff_actions.AccountActions:
    """For the action panel: refundable amounts, refunds and the credit balance of the listed invoices."""
    listed = getattr(invoices, "invoices", invoices) or []
    return staff_actions.account_actions(db(), account, list(listed))


@bp.app_template_global("amount_text")
def _amount_text(cents: int, currency: str) -> str:
    return staff_actions.amount_text(cents, currency)


# --- helpers --------------------------------------------------------------------------------------

def _account(account_id: int) -> Account:
    account = db().get(Account, account_id)
    if account is None:
        raise NotFound("No such account.")
    return account


def account_page_url(account_id: int) -> str:
    """Where a staff action returns to: the console's page of the account."""
    return url_for("staff.account", account_id=account_id)


def _context(account_id: int, **state) -> dict:
    session = db()
    session.expire_all()  # services committed in sessions of their own: read what they wrote
    account = _account(account_id)
    invoices = list_invoices(session, account_id, limit=LISTED_INVOICES).invoices
    return {"account": account, "invoices": invoices, "account_page": account_page_url(account_id), **state}


def _panel(account_id: int, *, status: int = 200, toast: str | None = None, **state):
    """HTMX: the panel (plus a toast out of band). Otherwise: the panel on its own page."""
    context = _context(account_id, **state)
    if request.htmx:
        body = Markup(render_template(PARTIAL, **context))
        if toast:
            body += Markup(render_block("base.html", "toast", toast_message=toast,
                                        toast_kind="error" if status >= 400 else "success", oob_swap=True))
        response = make_response(body, status)
    else:
        response = make_response(render_template_string(PAGE, **context), status)
    response.vary.add("HX-Request")
    return response


def _done(account_id: int, message: str):
    """Success: HTMX gets the fresh panel and a toast, a plain form a 303 back to the account page."""
    if request.htmx:
        return _panel(account_id, toast=message)
    flash(message, "success")
    return redirect(account_page_url(account_id), code=303)


def _failed(account_id: int, form: str, exc: DomainError, values: dict):
    """A refused action: field errors next to their fields (422) with the entered values kept; any other
    refusal (an invoice that is paid, a declined card) as an alert at the top of the panel."""
    if isinstance(exc, InvalidInput):
        return _panel(account_id, status=exc.status, toast=next(iter(exc.errors.values())),
                      action_errors={form: exc.errors}, action_values={form: values}, open_form=form)
    return _panel(account_id, status=exc.status, toast=exc.message, action_alert=exc.message)


def _key() -> str:
    key = request.form.get("request_key", "")
    return key if _KEY.match(key) else secrets.token_hex(16)


def _fields(*names: str) -> dict:
    return {name: request.form.get(name, "") for name in names}


# --- routes -------------------------------------------------------------------------------------

@bp.get("/actions")
@staff_required
def panel(account_id: int):
    """The action panel of an account (refunds, credits, void, retry, resend, wire transfer)."""
    return _panel(account_id)


@bp.post("/credits")
@staff_required
def grant_credit(account_id: int):
    """Grant account credit (amount and reason required); used first by the next invoices."""
    account = _account(account_id)
    values = _fields("amount", "reason")
    try:
        currency = credits.account_currency(db(), account)
        cents = staff_actions.parse_amount(values["amount"], currency, max_cents=settings().max_amount_cents)
        entry = credits.grant_credit(db(), account_id, amount_cents=cents, reason=values["reason"], actor=actor(),
                                     now=utcnow())
    except InvalidInput as exc:
        if not values["reason"].strip() and "reason" not in exc.errors:
            exc.errors["reason"] = "Enter the reason for this credit."
        db().rollback()
        return _failed(account_id, "credit", exc, values)
    from ..money import format_money

    return _done(account_id, f"Credit of {format_money(entry.amount_cents, entry.currency)} granted to {account.name}.")


@bp.post("/invoices/<int:invoice_id>/refund")
@staff_required
def refund(account_id: int, invoice_id: int):
    """Refund a paid invoice, fully or partly, to the original payment or as account credit."""
    _account(account_id)
    values = _fields("amount", "reason", "destination")
    form = f"refund-{invoice_id}"
    invoice = db().scalar(select(Invoice).where(Invoice.id == invoice_id, Invoice.account_id == account_id,
                                                Invoice.status != "draft"))
    if invoice is None:
        raise NotFound("That invoice does not exist.")
    try:
        try:
            cents = staff_actions.parse_amount(values["amount"], invoice.currency,
                                               max_cents=settings().max_amount_cents)
        except InvalidInput as exc:
            if not values["reason"].strip():
                exc.errors["reason"] = "Enter the reason for this refund."
            raise
        made = refunds.refund_invoice(current_app.extensions["portal.db"], gateway(), account_id, invoice_id,
                                      amount_cents=cents, reason=values["reason"],
                                      destination=values["destination"] or "card", actor=actor(), now=utcnow(),
                                      request_key=_key())
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _failed(account_id, form, exc, values)
    from ..money import format_money

    amount = format_money(made.amount_cents, made.currency)
    if made.destination == "credit":
        message = f"Refunded {amount} of {invoice.number} as account credit."
    elif made.status == "succeeded":
        message = f"Refunded {amount} of {invoice.number} to the original payment."
    else:
        message = f"Refund of {amount} for {invoice.number} is pending with the payment processor."
    return _done(account_id, message)


@bp.post("/invoices/<int:invoice_id>/void")
@staff_required
def void(account_id: int, invoice_id: int):
    """Void an Open invoice (reason required)."""
    _account(account_id)
    values = _fields("reason")
    try:
        invoice = staff_actions.void_invoice(current_app.extensions["portal.db"], gateway(), account_id, invoice_id,
                                             reason=values["reason"], actor=actor(), now=utcnow())
    except DomainError as exc:
        db().rollback()
        if isinstance(exc, NotFound):
            raise
        return _failed(account_id, f"void-{invoice_id}", exc, values)
    return _done(account_id, f"{invoice.number} is void.")


@bp.post("/invoices/<int:invoice_id>/retry")
@staff_required
def retry(account_id: int, invoice_id: int):
    """Charge an Open invoice now with the account's default card."""
    _account(account_id)
    try:
        outcome = staff_actions.retry_invoice_payment(current_app.extensions["portal.db"], gateway(), account_id,
                                                      invoice_id, actor=actor(), now=utcnow(), policy=retry_policy())
    except DomainError as exc:
        if isinstance(exc, NotFound):
            raise
        return _failed(account_id, f"retry-{invoice_id}", exc, {})
    if outcome.status in ("failed", "requires_action"):
        failure = DomainError(outcome.message)
        failure.status = 402
        return _failed(account_id, f"retry-{invoice_id}", failure, {})
    return _done(account_id, outcome.message)


@bp.post("/invoices/<int:invoice_id>/resend")
@staff_required
def resend(account_id: int, invoice_id: int):
    """E-mail the invoice to the account's billing e-mail again."""
    account = _account(account_id)
    invoice = staff_actions.resend_invoice(db(), account_id, invoice_id, actor=actor(), request_key=_key())
    return _done(account_id, f"{invoice.number} is on its way to {account.billing_email}.")


@bp.post("/invoices/<int:invoice_id>/wire")
@staff_required
def wire(account_id: int, invoice_id: int):
    """Record a payment received by wire transfer (reference and date required): the invoice becomes Paid."""
    _account(account_id)
    values = _fields("reference", "received_on")
    now = utcnow()
    try:
        errors = {}
        if not values["reference"].strip():
            errors["reference"] = "Enter the bank's reference of the transfer."
        try:
            received = staff_actions.parse_date(values["received_on"], field="received_on", today=now.date())
        except InvalidInput as exc:
            errors.update(exc.errors)
        if errors:
            raise InvalidInput(errors)
        invoice = staff_actions.record_wire_payment(current_app.extensions["portal.db"], gateway(), account_id,
                                                    invoice_id, reference=values["reference"], received_on=received,
                                                    actor=actor(), now=now)
    except DomainError as exc:
        db().rollback()
        if isinstance(exc, NotFound):
            raise
        return _failed(account_id, f"wire-{invoice_id}", exc, values)
    return _done(account_id, f"{invoice.number} is paid by wire transfer {invoice.processor_transaction_id}.")
