"""Invoice PDFs: rendered from ``templates/pdf/invoice.html`` with xhtml2pdf, once per status version.

An issued invoice's amounts, lines and snapshots never change, and every status or payment change bumps
``status_version``; so (invoice id, status version) names exactly one document, and the bytes can be
stored and served again instead of re-rendered. Rendering uses the non-Flask Jinja environment so the
worker (e-mail attachments) and the web route produce the same file.
"""
from __future__ import annotations

import io
import logging
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from xhtml2pdf import pisa
from xhtml2pdf.config.resources import ResourceAccessPolicy

from ..errors import InvoiceNotIssued
from ..models import Invoice, InvoicePdf
from .rendering import render

log = logging.getLogger(__name__)

TEMPLATE = "pdf/invoice.html"

# WenQuanYi Micro Hei (Apache-2.0; see data/fonts/): TrueType outlines, which reportlab can embed and
# subset (it cannot use CFF/OpenType outlines), and one face covering Latin, Latin Extended, Greek,
# Cyrillic, CJK, the euro sign and the bullet. One face matters: reportlab draws a run of text in a
# single font and never falls back per glyph, so a Latin-only font would print "李雷" as blanks.
# Loaded from the package, never from a system font path, so a fresh checkout renders the same.
FONTS_DIR = Path(__file__).resolve().parent.parent / "data" / "fonts"
FONT_FILE = FONTS_DIR / "wqy-microhei.ttc"
FONT_SUBFONT_INDEX = 0  # the .ttc holds "Micro Hei" (0) and "Micro Hei Mono" (1)
FONT_FAMILY = "invoicesans"
# xhtml2pdf registers an @font-face as "<family>_<bold><italic>" and reuses a font already registered
# under that name. Registering it ourselves first pins the collection's sub-font index (xhtml2pdf
# would take the first) and parses the 5 MB file once per process rather than in the first request.
_REPORTLAB_NAME = f"{FONT_FAMILY}_00"

# Every fetch the document makes is confined to the fonts folder and the network is off: nothing in
# an invoice needs anything else, and it keeps a future template mistake from reading local files or
# reaching internal hosts on a customer's behalf.
_RESOURCE_POLICY = ResourceAccessPolicy.server(base_dir=FONTS_DIR, allow_remote=False)


class InvoicePdfError(RuntimeError):
    """xhtml2pdf reported errors while rendering; the output can't be trusted to be complete."""


@lru_cache(maxsize=1)
def register_fonts() -> str:
    """Register the invoice face with reportlab (once per process); returns its reportlab name."""
    if _REPORTLAB_NAME not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(TTFont(_REPORTLAB_NAME, str(FONT_FILE), subfontIndex=FONT_SUBFONT_INDEX))
    return _REPORTLAB_NAME


def _require_issued(invoice: Invoice) -> None:
    if not invoice.is_issued or not invoice.number:
        raise InvoiceNotIssued("Draft invoices have no PDF.")


def render_invoice_html(invoice: Invoice) -> str:
    """The HTML the PDF is made from (useful on its own to debug layout in a browser)."""
    return render(TEMPLATE, invoice=invoice, font_family=FONT_FAMILY, font_url=FONT_FILE.as_posix())


def render_invoice_pdf(invoice: Invoice) -> bytes:
    """Render an issued invoice to PDF bytes, without touching the cache. Needs the invoice's lines and
    tax lines (loaded lazily from its session if not already)."""
    _require_issued(invoice)
    register_fonts()
    html = render_invoice_html(invoice)
    out = io.BytesIO()
    result = pisa.CreatePDF(html, dest=out, encoding="utf-8", resource_policy=_RESOURCE_POLICY)
    if result.err:
        raise InvoicePdfError(f"Rendering the PDF of invoice {invoice.number} failed ({result.err} errors).")
    return out.getvalue()


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
