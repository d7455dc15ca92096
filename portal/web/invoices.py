"""The Invoices section: more rows, PDF download, Pay now, Email me a copy."""
from __future__ import annotations

import re

from flask import Blueprint, current_app, redirect, request, url_for
from flask_login import current_user

from ..billing import invoices
from ..extensions import limiter
from .auth import customer_required
from .billing import render_page
from .context import account_id, db
from .rendering import done, render

bp = Blueprint("invoices", __name__, url_prefix="/billing/invoices")

_KEY = re.compile(r"^[0-9a-f]{32}$")


@bp.get("")
@customer_required
def index():
    """Older invoices: more rows for HTMX's "Show more", or the page from that point without JavaScript."""
    cursor = request.args.get("cursor") or None
    if request.htmx:
        return render_page(block="invoice_rows", invoice_cursor=cursor)
    return render_page(invoice_cursor=cursor)


@bp.get("/<int:invoice_id>.pdf")
@customer_required
def pdf(invoice_id: int):
    """Download an invoice as PDF (rendered once per status, then served from the cache)."""
    from ..billing.pdf import invoice_pdf

    invoice = invoices.get_invoice(db(), account_id(), invoice_id)
    content = invoice_pdf(db(), invoice)
    db().commit()
    response = current_app.response_class(content, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'attachment; filename="{invoice.filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<int:invoice_id>/email")
@customer_required
@limiter.limit("10 per hour", key_func=lambda: f"invoice-copy:{current_user.id}")
def email_copy(invoice_id: int):
    """Send a copy of the invoice, with its PDF, to the logged-in user's own e-mail."""
    key = request.form.get("request_key", "")
    if not _KEY.match(key):
        key = _fresh_key()
    invoice = invoices.send_invoice_copy(db(), account_id(), invoice_id, to=current_user.email, request_key=key)
    message = f"A copy of {invoice.number} is on its way to {current_user.email}."
    return done(message, url_for("billing.page") + "#invoices",
                partial=lambda msg: render("base.html", block="toast", toast_message=msg, oob_swap=True))


@bp.post("/<int:invoice_id>/pay")
@customer_required
def pay(invoice_id: int):
    """Pay an open invoice online."""
    invoice = invoices.get_invoice(db(), account_id(), invoice_id)
    return render("invoices/pay_unavailable.html", invoice=invoice)


def _fresh_key() -> str:
    import secrets

    return secrets.token_hex(16)
