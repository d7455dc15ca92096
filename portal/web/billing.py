"""The Billing details page and its state: which part of it is open, and what the last action left to say."""
from __future__ import annotations

from dataclasses import dataclass, field

from flask import Blueprint, request
from flask_wtf import FlaskForm

from ..billing.overview import billing_overview
from ..billing.subscriptions.cancellation import REASONS as CANCEL_REASONS
from ..models import utcnow
from ..payments.gateway import SetupIntent
from .auth import customer_required
from ..bounds import parse_int
from .context import account_id, db, seller, transfer_terms
from .rendering import render

bp = Blueprint("billing", __name__)

PAGE = "billing/page.html"


@dataclass(frozen=True)
class BillingPage:
    """What is open on Billing details beyond the data itself; the template reads it as ``state``.

    The defaults are the page as it first opens: every form closed, no messages."""

    # Payment details
    adding: bool = False                        # the add-a-card form is open
    authenticating: SetupIntent | None = None   # the sandbox's 3-D Secure step for this SetupIntent
    editing: int | None = None                  # id of the card whose edit form is open
    confirming_delete: int | None = None        # id of the card whose delete confirmation is open
    form: FlaskForm | None = None               # the open card form (add or edit), with its errors
    card_form_error: str | None = None          # Stripe mode: why the card could not be confirmed
    card_errors: dict[int, str] = field(default_factory=dict)  # card id -> why its action was refused
    adding_type: str | None = None              # "paypal" or "bank": that add form is open (a card's is ``adding``)
    bank_offer: object | None = None            # BankOffer: which bank account may be added, or why none (both modes)
    verifying: int | None = None                # id of the pending bank account whose Verify form was refused
    verify_form: FlaskForm | None = None        # that form, with its errors
    setup_return: str | None = None             # Stripe mode: a SetupIntent back from PayPal, to be posted
    # Billing address
    editing_address: bool = False
    address_values: dict[str, str] = field(default_factory=dict)
    address_errors: dict[str, str] = field(default_factory=dict)  # field name -> message
    # Current subscription
    retry_error: str | None = None              # why Retry payment failed, shown in the banner
    cancelling: bool = False                    # the cancel form (why, then confirm) is open
    changing_plan: bool = False                 # the Change plan (or Resubscribe) panel is open
    plan_choice: str | None = None              # the plan chosen in it, previewed before Confirm
    plan_error: str | None = None               # why the change was refused (a decline), next to the plans
    cancel_values: dict[str, str] = field(default_factory=dict)
    cancel_errors: dict[str, str] = field(default_factory=dict)  # field name -> message
    pay_with: int | None = None                 # id of a method just saved while Past due: offer to pay with it
    # Invoices
    invoice_cursor: str | None = None           # show invoices from this point (no-JS "Show more")


# Blocks that are not sections of their own: the rows of "Show more" are the Invoices section's data.
_BLOCK_SECTION = {"invoice_rows": "invoices", "toast": None}


def sections_for(block: str | None, oob: tuple[str, ...] = ()) -> frozenset[str] | None:
    """The overview's sections an answer renders: for HTMX only the swapped block and its out-of-band
    blocks, otherwise (the whole page) all of them."""
    if not (request.htmx and block):
        return None
    names = {_BLOCK_SECTION.get(name, name) for name in (block, *oob)}
    return frozenset(names - {None})


def page_context(state: BillingPage, *, sections: frozenset[str] | None = None) -> dict:
    """The page's data (or only that of ``sections``) plus which part of it is open."""
    now = utcnow()
    overview = billing_overview(db(), account_id(), today=now.date(), seller=seller(),
                                invoice_cursor=state.invoice_cursor, sections=sections,
                                plan_panel_at=now if state.changing_plan else None, plan_choice=state.plan_choice,
                                transfer_terms=transfer_terms())
    return {"overview": overview, "state": state, "cancel_reasons": CANCEL_REASONS}


def render_page(state: BillingPage | None = None, *, block: str | None = None, oob: tuple[str, ...] = (),
                status: int = 200, toast: str | None = None):
    context = page_context(state or BillingPage(), sections=sections_for(block, oob))
    return render(PAGE, block=block, oob=oob, status=status, toast=toast, **context)


@bp.get("/billing")
@customer_required
def page():
    """Show Billing details: subscription, saved cards, billing address and invoices. ``pay_with`` (a method
    just saved while a payment has failed, without JavaScript) opens the page with the offer to pay with it."""
    return render_page(BillingPage(pay_with=parse_int(request.args.get("pay_with", ""))))
