"""Invoice PDFs: rendered from ``templates/pdf/invoice.html`` with xhtml2pdf, once per status version.

An issued invoice's amounts, lines and snapshots never change, and every status or payment change bumps
``status_version``; so (invoice id, status version) names exactly one document, and the bytes can be
stored and served again instead of re-rendered. Rendering uses the non-Flask Jinja environment so the
worker (e-mail attachments) and the web route produce the same file.
"""
from __future__ import annotations

import io
import logging
import re
from datetime import datetime

from markupsafe import Markup
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

from ..errors import InvoiceNotIssued
from ..models import Invoice, InvoicePdf
from . import fonts
from .rendering import render

log = logging.getLogger(__name__)

TEMPLATE = "pdf/invoice.html"

# Every fetch the document makes is confined to the fonts folder and the network is off: nothing in
# an invoice needs anything else (its faces are registered in-process by ``fonts``), and it keeps a future
# template mistake from reading local files or reaching internal hosts on a customer's behalf.
_RESOURCE_POLICY = ResourceAccessPolicy.server(base_dir=fonts.FONTS_DIR, allow_remote=False)

# Stands where the template's font-family list goes until the text is known. Autoescaping turns any "<"
# a customer types into "&lt;", so no invoice text can ever contain it.
_FONTS_SLOT = Markup("<!--font-families-->")

# xhtml2pdf's default stylesheet cut down to the rules for the tags templates/pdf/invoice.html uses (its
# values unchanged): the whole one is parsed again for every document, about a tenth of a render, for
# headings, lists, links and forms an invoice never has. A tag added to the template that needs one of the
# dropped rules (b, strong, h1-h6, ul, a...) must bring it here.
_DEFAULT_CSS = """
html { font-family: Helvetica; font-size: 10px; font-weight: normal; color: #000000; margin: 0; padding: 0;
       line-height: 150%; border: 1px none; display: inline; width: auto; height: auto; white-space: normal; }
p { margin: 1em 0; }
body, div, p, table, th, tr, td { display: block; }
tr, th, td { vertical-align: middle; width: auto; }
th { text-align: center; font-weight: bold; }
"""

# Whitespace between two tags: the template's indentation. xhtml2pdf walks every one of these as a text node
# (about a tenth of a render) and draws none of them. Autoescaping turns any "<" or ">" a customer types into
# "&lt;" / "&gt;", so this only ever matches between the template's own tags, never inside invoice text.
_BETWEEN_TAGS = re.compile(r">\s+<")

# reportlab writes one "/Type /Page" dictionary per page (and "/Type /Pages" for the page tree).
_PAGE_OBJECT = re.compile(rb"/Type\s*/Page(?![A-Za-z])")


class InvoicePdfError(RuntimeError):
    """xhtml2pdf reported errors while rendering; the output can't be trusted to be complete."""


def _require_issued(invoice: Invoice) -> None:
    if not invoice.is_issued or not invoice.number:
        raise InvoiceNotIssued("Draft invoices have no PDF.")


def render_invoice_html(invoice: Invoice, *, page_count: int | None = None) -> str:
    """The HTML the PDF is made from (useful on its own to debug layout in a browser), with the fonts its
    text needs (``fonts.families_for``). ``page_count`` prints "Page n of <page_count>" as plain text;
    without it xhtml2pdf fills in the count, which costs a second layout pass."""
    html = _BETWEEN_TAGS.sub("><", render(TEMPLATE, invoice=invoice, font_family=_FONTS_SLOT,
                                          page_count=page_count))
    return html.replace(str(_FONTS_SLOT), ", ".join(fonts.families_for(html)), 1)


def _to_pdf(html: str, number: str) -> bytes:
    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, encoding="utf-8", default_css=_DEFAULT_CSS,
                            resource_policy=_RESOURCE_POLICY)
    if result.err:
        raise InvoicePdfError(f"Rendering the PDF of invoice {number} failed ({result.err} errors).")
    return out.getvalue()


def _pages(content: bytes) -> int:
    return len(_PAGE_OBJECT.findall(content))


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """Render an issued invoice to PDF bytes, without touching the cache. Needs the invoice's lines and
    tax lines (loaded lazily from its session if not already).

    Nearly every invoice fits one page, so it is laid out once as "Page 1 of 1"; only when that comes
    out longer is it rendered again with xhtml2pdf counting the pages (two layout passes)."""
    _require_issued(invoice)
    content = _to_pdf(render_invoice_html(invoice, page_count=1), invoice.number)
    if _pages(content) != 1:
        content = _to_pdf(render_invoice_html(invoice), invoice.number)
    return content


def invoice_pdf(session: Session, invoice: Invoice, *, now: datetime) -> bytes:
    """The PDF of an issued invoice: from the cache when this status version was rendered before,
    otherwise rendered now and stored.

    Transactions: runs inside the caller's transaction and never commits. The new cache row is
    inserted in a savepoint and becomes permanent when the caller commits (the web route and the
    worker do); if the caller rolls back instead, the next request simply renders again. The savepoint
    is there for the race: when a concurrent request stored the same (invoice, version) first, our
    insert fails on the primary key, only the savepoint is rolled back, and the bytes we rendered are
    returned (both renders come from the same immutable invoice and version).

    On SQLite, if this insert is the transaction's first write, releasing the savepoint commits it at
    once (pysqlite starts no transaction of its own around a SAVEPOINT); harmless for a cache row.
    Raises InvoiceNotIssued for drafts.
    """
    _require_issued(invoice)
    version = invoice.status_version
    cached = session.scalar(select(InvoicePdf.content)
                            .where(InvoicePdf.invoice_id == invoice.id, InvoicePdf.status_version == version))
    if cached is not None:
        return bytes(cached)
    content = render_invoice_pdf(invoice)
    try:
        with session.begin_nested():
            # Core insert: the bytes need not sit in the session's identity map for its lifetime.
            session.execute(insert(InvoicePdf).values(invoice_id=invoice.id, status_version=version,
                                                      content=content, created_at=now))
    except IntegrityError:
        log.debug("invoice %s v%s: a concurrent render stored its PDF first", invoice.id, version)
    return content
