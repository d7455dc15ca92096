"""The Billing address section: view, Update (edit form), Save, Cancel."""
from __future__ import annotations

from flask import Blueprint, redirect, request, url_for

from ..billing.customer.billing_info import VatPolicy, current_billing_info, update_billing_info
from ..errors import InvalidInput
from ..models import utcnow
from .auth import customer_required
from .billing import BillingPage, render_page
from .context import account_id, actor, db, settings
from .rendering import done

bp = Blueprint("billing_info", __name__, url_prefix="/billing/address")

SECTION = "address"


def section(state: BillingPage | None = None, *, status: int = 200, toast: str | None = None):
    """The Billing address section, with the subscription (whose tax depends on it) kept true."""
    return render_page(state, block=SECTION, oob=("subscription",), status=status, toast=toast)


@bp.get("")
@customer_required
def show():
    """The section as it reads normally (what Cancel swaps back in); the page for plain links."""
    if not request.htmx:
        return redirect(url_for("billing.page") + "#billing-address")
    return section()


@bp.get("/edit")
@customer_required
def edit():
    """Open the billing information form with the current values."""
    return section(BillingPage(editing_address=True, address_values=current_billing_info(db(), account_id())))


@bp.post("")
@customer_required
def update():
    """Save the billing information; every wrong field gets its own message and nothing is saved."""
    values = {k: request.form.get(k, "") for k in current_billing_info(db(), account_id())}
    policy = VatPolicy(vies_url=settings().vies_url, vies_timeout=settings().vies_timeout)
    try:
        change = update_billing_info(db(), account_id(), values, actor=actor(), now=utcnow(), policy=policy)
    except InvalidInput as exc:
        return section(BillingPage(editing_address=True, address_values=values, address_errors=exc.errors),
                       status=422)
    message = "Your billing information was saved. It applies to future invoices."
    if not change.changed:
        message = "Nothing changed."
    if change.vat_notice:
        message = f"{message} {change.vat_notice}"
    return done(message, url_for("billing.page") + "#billing-address", partial=lambda msg: section(toast=msg))

