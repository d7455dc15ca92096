"""Manage plan on Billing details: change plan (with a preview), cancel at the period end with a reason,
keep the subscription, cancel a scheduled change, resubscribe.

Everything happens inside the Current subscription section: HTMX gets that section back, a plain form a
303 to the page. Opening a panel (the plan list, the cancel form) is a GET that renders the page, or the
section, with it open, so the no-JS page and the HTMX partial are the same markup.
"""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from ..billing.subscriptions import cancellation, changes
from ..errors import DomainError, InvalidInput
from ..models import utcnow
from .auth import customer_required
from .billing import PAGE, BillingPage, page_context, render_page, sections_for
from .context import account_id, actor, database, db, forget_reads, gateway, retry_policy, seller
from .rendering import done, render

bp = Blueprint("plan", __name__, url_prefix="/billing")

SECTION = "subscription"
ANCHOR = "#subscription"


def section(state: BillingPage | None = None, *, status: int = 200, toast: str | None = None):
    """The Current subscription section, with the invoices (a change may issue one) kept true."""
    return render_page(state, block=SECTION, oob=("invoices",), status=status, toast=toast)


def finished(message: str):
    return done(message, url_for("billing.page") + ANCHOR, partial=lambda msg: section(toast=msg))


@bp.get("/subscription")
@customer_required
def show():
    """The Current subscription section as it reads normally (what closing a panel swaps back in)."""
    if not request.htmx:
        return redirect(url_for("billing.page") + ANCHOR)
    return section()


# --- change plan (and resubscribe) ----------------------------------------------------------------

def plan_panel(state: BillingPage, *, status: int | None = None):
    """The section with the Change plan panel open; a choice the panel refuses answers 422."""
    context = page_context(state, sections=sections_for(SECTION, ("invoices",)))
    panel = context["overview"].plans
    if status is None:
        status = 422 if panel is not None and panel.errors else 200
    return render(PAGE, block=SECTION, oob=("invoices",), status=status, **context)


@bp.get("/plan")
@customer_required
def change():
    """Open Change plan (Resubscribe when canceled): the plans to pick, and with ?plan_id= its preview."""
    return plan_panel(BillingPage(changing_plan=True, plan_choice=request.args.get("plan_id")))


@bp.post("/plan")
@customer_required
def change_submit():
    """Review the chosen plan (nothing changes), or with confirm=yes apply exactly what the preview showed."""
    plan_id = request.form.get("plan_id", "")
    if request.form.get("confirm") != "yes":
        return plan_panel(BillingPage(changing_plan=True, plan_choice=plan_id))
    try:
        result = changes.change_plan(database(), gateway(), account_id(), plan_id,
                                     seller=seller(), actor=actor(), now=utcnow(), policy=retry_policy())
    except DomainError as exc:
        forget_reads()  # the change wrote nothing, or voided what it started, in its own transactions
        message = exc.errors.get("plan_id", exc.message) if isinstance(exc, InvalidInput) else exc.message
        return plan_panel(BillingPage(changing_plan=True, plan_choice=plan_id, plan_error=message),
                          status=exc.status)
    return finished(result.message)


@bp.post("/plan/scheduled/cancel")
@customer_required
def cancel_change():
    """Cancel this change: drop the downgrade scheduled for the period end."""
    return finished(changes.cancel_scheduled_change(db(), account_id(), actor=actor(), now=utcnow()).message)


# --- cancel -------------------------------------------------------------------------------------------

@bp.get("/cancel")
@customer_required
def cancel():
    """Open the cancel form: why, then confirm."""
    return section(BillingPage(cancelling=True))


@bp.post("/cancel")
@customer_required
def cancel_submit():
    """Cancel at the period end with the reason given; errors come back next to the field."""
    values = {"reason": request.form.get("reason", ""), "comment": request.form.get("comment", "")}
    try:
        result = cancellation.cancel(db(), account_id(), reason=values["reason"], comment=values["comment"],
                                     actor=actor(), now=utcnow())
    except InvalidInput as exc:
        return section(BillingPage(cancelling=True, cancel_values=values, cancel_errors=exc.errors), status=422)
    return finished(result.message)


@bp.post("/keep")
@customer_required
def keep():
    """Keep my subscription: undo a cancel at the period end."""
    return finished(cancellation.keep(db(), account_id(), actor=actor(), now=utcnow()).message)
