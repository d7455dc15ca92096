"""Retry payment: the customer asks us to charge the open invoice(s) now."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask_login import current_user

from ..billing.collecting import collection
from ..errors import DomainError
from ..extensions import limiter
from ..models import utcnow
from .auth import customer_required
from .billing import BillingPage, render_page
from ..bounds import parse_int
from .context import account_id, database, gateway, retry_policy

bp = Blueprint("dunning", __name__)


@bp.post("/billing/retry-payment")
@customer_required
@limiter.limit("5 per 10 minutes", key_func=lambda: f"retry-payment:{current_user.account_id}")
def retry():
    """Charge the open invoices now with the default card; the result shows in the page."""
    # "Pay … now with" a method just saved: that one; otherwise the default.
    chosen = request.form.get("payment_method_id", "")
    method_id = (parse_int(chosen) or 0) if chosen else None  # 0: no such method, refused by the service
    try:
        result = collection.retry_now(database(), gateway(), account_id(), now=utcnow(), policy=retry_policy(),
                                      method_id=method_id)
    except DomainError as exc:
        return _answer(exc.message, error=True, status=exc.status)
    if result.failed:
        number, reason = result.failed[0]
        # The processor's reason is often a sentence already ("Your card was declined."): one full stop, not two.
        return _answer(f"The payment for {number} failed: {reason.rstrip('.')}. Try another card, or pay the invoice below.",
                       error=True, status=402)
    return _answer(f"Payment received for {', '.join(result.paid)}. Your subscription is active again.", error=False)


def _answer(message: str, *, error: bool, status: int = 200):
    if request.htmx:
        return render_page(BillingPage(retry_error=message if error else None), block="subscription",
                           oob=("invoices", "payment_details"), status=status, toast=message)
    flash(message, "error" if error else "success")
    return redirect(url_for("billing.page"), code=303)
