"""Staff managing a customer's plan from the console: change plan now or at the period end, cancel now or at
the period end, undo either; each with the staff member's reason, audited. And the cancellation reasons report.

The same services as the customer's Manage plan (``subscriptions/changes.py``, ``cancellation.py``), with a
note and, for staff, the choice of when. Forms post here and work without JavaScript (a 303 back to the
account page); HTMX gets the page's ``subscription`` block. Impersonation stays read-only: these are staff
routes, and staff viewing as a customer can change nothing on the customer's pages either.
"""
from __future__ import annotations

from flask import Blueprint

from ..billing import console
from ..billing.subscriptions import cancellation, changes
from ..errors import DomainError
from ..models import utcnow
from .context import actor, database, db, gateway, retry_policy, seller
from .rendering import render
from .staff_access import staff_required
from .staff_answers import answered, form_values, refused

bp = Blueprint("staff_plan", __name__, url_prefix="/staff")

BLOCK = "subscription"  # the block of templates/staff/account.html these forms swap
PREFIX = "/accounts/<int:account_id>/subscription"


def _apply(account_id: int, form: str, values: dict, action):
    """Run one plan service for the console; its refusal goes back to the form ``form`` with ``values`` kept.
    The services refuse before they write anything, so there is nothing to undo here."""
    try:
        result = action()
    except DomainError as exc:
        return refused(account_id, form, exc, values, block=BLOCK)
    return answered(account_id, result.message, block=BLOCK)


@bp.post(f"{PREFIX}/plan")
@staff_required
def change(account_id: int):
    """Move the subscription to another plan of its currency, now (prorated) or at the period end."""
    values = form_values("plan_id", "when", "note")
    return _apply(account_id, "plan", values, lambda: changes.change_plan(
        database(), gateway(), account_id, values["plan_id"], seller=seller(), actor=actor(), now=utcnow(),
        policy=retry_policy(), when=values["when"], staff_note=values["note"]))


@bp.post(f"{PREFIX}/cancel")
@staff_required
def cancel(account_id: int):
    """Cancel on the customer's behalf, at once or at the period end, with the customer's reason and ours."""
    values = form_values("when", "reason", "comment", "note")
    return _apply(account_id, "cancel", values, lambda: cancellation.cancel(
        db(), account_id, reason=values["reason"], comment=values["comment"], actor=actor(), now=utcnow(),
        when=values["when"], staff_note=values["note"]))


@bp.post(f"{PREFIX}/keep")
@staff_required
def keep(account_id: int):
    """Undo a cancel at the period end."""
    values = form_values("note")
    return _apply(account_id, "keep", values, lambda: cancellation.keep(
        db(), account_id, actor=actor(), now=utcnow(), staff_note=values["note"]))


@bp.post(f"{PREFIX}/scheduled/cancel")
@staff_required
def cancel_change(account_id: int):
    """Drop a plan change scheduled for the period end."""
    values = form_values("note")
    return _apply(account_id, "undo-change", values, lambda: changes.cancel_scheduled_change(
        db(), account_id, actor=actor(), now=utcnow(), staff_note=values["note"]))


@bp.get("/reports/cancellations")
@staff_required
def reasons():
    """Why customers canceled, by month, over the last twelve months."""
    rows = console.cancellation_reasons(db(), today=utcnow().date())
    return render("staff/cancellations.html", rows=rows)
