"""The Billing details page."""
from __future__ import annotations

from flask import Blueprint

from ..billing.overview import billing_overview
from ..models import utcnow
from .auth import customer_required
from .context import account_id, db, seller
from .rendering import render

bp = Blueprint("billing", __name__)

PAGE = "billing/page.html"


def page_context(**state) -> dict:
    """The page's data plus which part of it is open (an add form, an edit form, a confirmation)."""
    overview = billing_overview(db(), account_id(), today=utcnow().date(), seller=seller(),
                                invoice_cursor=state.get("invoice_cursor"))
    return {"overview": overview, "state": state}


def render_page(*, block: str | None = None, oob: tuple[str, ...] = (), status: int = 200,
                toast: str | None = None, **state):
    return render(PAGE, block=block, oob=oob, status=status, toast=toast, **page_context(**state))


@bp.get("/billing")
@customer_required
def page():
    """Show Billing details: subscription, saved cards, billing address and invoices."""
    return render_page()
