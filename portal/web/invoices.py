"""The Invoices section: more rows, an invoice's details, PDF download, Pay now, Email me a copy."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, request, url_for
from flask_login import current_user

from ..billing.collecting import bank_transfer, checkout
from ..billing.invoice_details import invoice_details
from ..billing.invoicing import invoices
from ..errors import DomainError
from ..models import utcnow
from ..extensions import limiter
from .auth import customer_required
from .billing import BillingPage, render_page
from .context import account_id, actor, db, gateway, request_key, transfer_terms
from .rendering import done, go_to, render

bp = Blueprint("invoices", __name__, url_prefix="/billing/invoices")

@bp.get("")
@customer_required
def index():
    """Older invoices: more rows for HTMX's "Show more", or the page from that point without JavaScript."""
    cursor = request.args.get("cursor") or None
    return render_page(BillingPage(invoice_cursor=cursor), block="invoice_rows")


@bp.get("/<int:invoice_id>")
@customer_required
def show(invoice_id: int):
    """An invoice's details: in place under its row for HTMX, a page of its own without JavaScript."""
    details = invoice_details(db(), account_id(), invoice_id, transfer_terms())
    return render("invoices/details.html", block="details_row", details=details)


@bp.post("/<int:invoice_id>/bank-transfer")
@customer_required
def choose_bank_transfer(invoice_id: int):
    """Pay an annual invoice by bank transfer: its details open with the bank details and the reference."""
    terms = transfer_terms()
    try:
        result = bank_transfer.choose_bank_transfer(db(), account_id(), invoice_id, terms=terms, actor=actor(),
                                                    now=utcnow())
    except DomainError as exc:
        if exc.status == 404 or request.htmx:
            raise  # HTMX: the error handler shows it as a toast and leaves the page alone
        flash(exc.message, "error")
        return redirect(url_for("invoices.show", invoice_id=invoice_id), code=303)
    if request.htmx:
        details = invoice_details(db(), account_id(), invoice_id, terms)
        return render("invoices/details.html", block="details_row", toast=result.message, details=details)
    flash(result.message, "success")
    return redirect(url_for("invoices.show", invoice_id=invoice_id) + f"#bank-transfer-{invoice_id}", code=303)


@bp.get("/<int:invoice_id>.pdf")
@customer_required
def pdf(invoice_id: int):
    """Download an invoice as PDF (rendered once per status, then served from the cache)."""
    document = invoices.download_invoice_pdf(db(), account_id(), invoice_id, now=utcnow())
    response = current_app.response_class(document.content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{document.filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<int:invoice_id>/email")
@customer_required
@limiter.limit("10 per hour", key_func=lambda: f"invoice-copy:{current_user.id}")
def email_copy(invoice_id: int):
    """Send a copy of the invoice, with its PDF, to the logged-in user's own e-mail."""
    invoice = invoices.send_invoice_copy(db(), account_id(), invoice_id, to=current_user.email,
                                        request_key=request_key(), now=utcnow())
    message = f"A copy of {invoice.number} is on its way to {current_user.email}."
    return done(message, url_for("billing.page") + "#invoices")  # HTMX: a toast, the row left as it is


@bp.post("/<int:invoice_id>/pay")
@customer_required
@limiter.limit("20 per hour", key_func=lambda: f"pay-now:{current_user.id}")
def pay(invoice_id: int):
    """Send the customer to the processor's payment page for an Open invoice."""
    success = url_for("invoices.paid", invoice_id=invoice_id, _external=True) + "?session_id={CHECKOUT_SESSION_ID}"
    cancel = url_for("invoices.checkout_canceled", invoice_id=invoice_id, _external=True)
    try:
        target = checkout.start_checkout(db(), gateway(), account_id(), invoice_id, success_url=success,
                                         cancel_url=cancel, now=utcnow())
    except DomainError as exc:
        if exc.status == 404:
            raise
        if request.htmx:
            raise  # the error handler shows it as a toast and leaves the page alone
        flash(exc.message, "error")
        return redirect(url_for("billing.page") + "#invoices", code=303)
    # 204: htmx follows HX-Redirect and swaps nothing.
    return go_to(target, status=204)


@bp.get("/<int:invoice_id>/paid")
@customer_required
def paid(invoice_id: int):
    """Back from the payment page: wait for the processor's word (never the URL's) that it is paid."""
    invoice, attempt = checkout.payment_status(db(), account_id(), invoice_id)
    return render("invoices/paid.html", invoice=invoice, attempt=attempt)


@bp.get("/<int:invoice_id>/payment-status")
@customer_required
def payment_status(invoice_id: int):
    """The waiting page's status block, polled by HTMX until the invoice is Paid (or the payment failed)."""
    invoice, attempt = checkout.payment_status(db(), account_id(), invoice_id)
    return render("invoices/paid.html", block="status", invoice=invoice, attempt=attempt)


@bp.get("/<int:invoice_id>/checkout-canceled")
@customer_required
def checkout_canceled(invoice_id: int):
    """The customer left the payment page: the invoice stays Open and they are back on Billing details."""
    invoice = invoices.get_invoice(db(), account_id(), invoice_id)
    flash(f"Payment canceled. {invoice.number} is still open; you can pay it at any time.", "info")
    return redirect(url_for("billing.page") + "#invoices", code=303)

