"""Invoice PDFs: what the document says (read back with pypdf), that it is safe with whatever a customer
typed, and that it is rendered once per status version. Which fonts print which names:
``test_invoice_pdf_fonts.py``."""
from __future__ import annotations

import io
import re
from datetime import datetime, timezone

import pytest
from pypdf import PdfReader
from sqlalchemy import func, insert, select

from portal import errors
from portal.documents import pdf
from portal.billing.invoicing.invoices import build_subscription_invoice, mark_paid
from portal.billing.subscriptions.renewals import run_renewals
from portal.models import CreditEntry, Invoice, InvoicePdf

from ..helpers import POLICY, add_card, make_customer, make_plan, make_subscription

NOW = datetime(2026, 12, 1, 0, 5, tzinfo=timezone.utc)
PERIOD_END = datetime(2026, 12, 1, tzinfo=timezone.utc)
UNICODE_NAME = "Zoë Łukasz 李雷 Ğ"
SELLER_VAT = "IE6388047V"  # the default seller's (IE), from the settings


def eur_invoice(database, session, sandbox, seller, *, name=UNICODE_NAME, card=True, credit_cents=0,
                **fields) -> Invoice:
    """One issued EUR invoice for a customer in Berlin, paid by card when ``card`` (else left open)."""
    fields = {"country": "DE", "city": "Berlin", "postal_code": "10115", "address_line1": "Friedrichstraße 123",
              **fields}
    account, _ = make_customer(session, name=name, **fields)
    if card:
        add_card(session, sandbox, account, default=True)
    if credit_cents:
        session.add(CreditEntry(account_id=account.id, amount_cents=credit_cents, currency="EUR", kind="grant",
                                reason="goodwill"))
        session.commit()
    plan = make_plan(session, code="pro-eur", currency="EUR", price_cents=2000)
    make_subscription(session, account, plan=plan, period_end=PERIOD_END)
    run_renewals(database, sandbox, seller, now=NOW, policy=POLICY)
    session.expire_all()
    return session.scalars(select(Invoice)).one()


def pdf_text(content: bytes) -> str:
    """All text of the PDF with runs of whitespace made single spaces (extraction wraps lines)."""
    reader = PdfReader(io.BytesIO(content))
    return " ".join(" ".join(page.extract_text() for page in reader.pages).split())


def void(session, invoice: Invoice) -> None:
    invoice.status, invoice.voided_at, invoice.void_reason = "void", NOW, "Billed twice"
    invoice.status_version = invoice.status_version + 1
    session.commit()


def test_a_paid_eur_invoice_prints_seller_customer_lines_tax_totals_and_payment(database, session, sandbox, seller):
    invoice = eur_invoice(database, session, sandbox, seller)
    assert invoice.status == "paid"
    text = pdf_text(pdf.invoice_pdf(session, invoice, now=NOW))

    assert invoice.number in text
    assert "Example Software Ltd." in text and "1 Dock Road" in text and f"VAT number: {SELLER_VAT}" in text
    assert UNICODE_NAME in text
    assert "Friedrichstraße 123" in text and "10115 Berlin" in text and "Germany" in text
    assert "billing@acme.example" in text
    assert "Pro plan (monthly)" in text and "1 Dec 2026 – 1 Jan 2027" in text
    # 20.00 net, German VAT for a consumer (destination rule), 23.80 paid.
    assert "VAT 19% (DE) on €20.00 €3.80" in text
    assert "Subtotal €20.00" in text and "Total €23.80" in text
    assert "Amount paid €23.80" in text and "Amount due €0.00" in text
    assert "PAID" in text and "VOID" not in text and "OPEN" not in text
    assert "Visa •••• 4242" in text and "•" in text
    assert invoice.processor_transaction_id.startswith("ch_sbx_") and invoice.processor_transaction_id in text
    assert "EUR" in text
    assert "Credits applied" not in text and "Amount refunded" not in text and "Reverse charge" not in text


def test_a_us_customer_address_prints_city_state_and_zip_on_one_line(database, session, sandbox, seller):
    invoice = eur_invoice(database, session, sandbox, seller, country="US", city="Springfield", region="MA",
                          postal_code="01101", address_line1="100 Main Street")
    text = pdf_text(pdf.invoice_pdf(session, invoice, now=NOW))
    assert "100 Main Street Springfield, MA 01101 United States" in text


def test_an_open_invoice_is_marked_open_with_the_amount_due(database, session, sandbox, seller):
    invoice = eur_invoice(database, session, sandbox, seller, card=False)
    assert invoice.status == "open"
    text = pdf_text(pdf.invoice_pdf(session, invoice, now=NOW))
    assert "OPEN — amount due €23.80" in text
    assert "Amount paid €0.00" in text and "Amount due €23.80" in text
    assert "PAID" not in text and "VOID" not in text


def test_a_void_invoice_carries_a_void_stamp_and_owes_nothing(database, session, sandbox, seller):
    invoice = eur_invoice(database, session, sandbox, seller, card=False)
    void(session, invoice)
    text = pdf_text(pdf.invoice_pdf(session, invoice, now=NOW))
    assert "VOID" in text and "Billed twice" in text and "Amount due €0.00" in text
    assert "PAID" not in text and "OPEN" not in text


def test_a_german_business_with_a_valid_vat_number_gets_the_reverse_charge_note_with_both_numbers(
        database, session, sandbox, seller):
    invoice = eur_invoice(database, session, sandbox, seller, vat_number="DE136695976", vat_status="valid")
    text = pdf_text(pdf.invoice_pdf(session, invoice, now=NOW))
    assert "Reverse charge on €20.00 €0.00" in text and "Total €20.00" in text
    assert "Article 196" in text
    assert f"Supplier VAT {SELLER_VAT}, customer VAT DE136695976" in text
    assert "VAT number: DE136695976" in text  # in the customer's block as well
    assert "VAT 19%" not in text


def test_credits_and_refunds_are_printed_when_there_are_some(database, session, sandbox, seller):
    invoice = eur_invoice(database, session, sandbox, seller, credit_cents=500)
    # 20.00 - 5.00 credit = 15.00 taxable; 19% of it is 2.85.
    assert (invoice.credit_applied_cents, invoice.tax_cents, invoice.total_cents) == (500, 285, 1785)
    invoice.amount_refunded_cents = 1785
    invoice.status_version = invoice.status_version + 1
    session.commit()
    text = pdf_text(pdf.invoice_pdf(session, invoice, now=NOW))
    assert "Credits applied −€5.00" in text
    assert "VAT 19% (DE) on €15.00 €2.85" in text and "Total €17.85" in text
    assert "Amount refunded €17.85" in text


def test_a_name_that_looks_like_markup_is_printed_as_text(database, session, sandbox, seller):
    name = "<b>Bold</b><img src=x>"
    invoice = eur_invoice(database, session, sandbox, seller, name=name, address_line1="1 <i>Main</i> & Co")
    assert "&lt;b&gt;Bold&lt;/b&gt;&lt;img src=x&gt;" in pdf.render_invoice_html(invoice)
    content = pdf.invoice_pdf(session, invoice, now=NOW)
    text = pdf_text(content)
    assert name in text and "1 <i>Main</i> & Co" in text
    assert len(PdfReader(io.BytesIO(content)).pages[0].images) == 0


@pytest.fixture
def renders(monkeypatch) -> list[int]:
    """The status version of every PDF actually rendered, in order (a copy served from the cache adds none)."""
    calls = []
    real_render = pdf.render_invoice_pdf

    def counting_render(invoice):
        calls.append(invoice.status_version)
        return real_render(invoice)

    monkeypatch.setattr(pdf, "render_invoice_pdf", counting_render)
    return calls


def test_the_pdf_is_rendered_once_per_status_version_and_then_served_from_the_cache(
        database, session, sandbox, seller, renders):
    invoice = eur_invoice(database, session, sandbox, seller, card=False)

    first = pdf.invoice_pdf(session, invoice, now=NOW)
    session.commit()
    assert pdf.invoice_pdf(session, invoice, now=NOW) == first
    with database.session() as other:  # another request, another session
        assert pdf.invoice_pdf(other, other.get(Invoice, invoice.id), now=NOW) == first
    assert renders == [1]

    assert mark_paid(invoice, amount_cents=invoice.total_cents, now=NOW, payment_method_label="SEPA transfer",
                     transaction_id="tx_sepa_42")
    session.commit()
    paid = pdf.invoice_pdf(session, invoice, now=NOW)
    session.commit()
    assert renders == [1, 2]
    assert "PAID" in pdf_text(paid) and "tx_sepa_42" in pdf_text(paid) and "OPEN" not in pdf_text(paid)
    assert pdf.invoice_pdf(session, invoice, now=NOW) == paid and renders == [1, 2]
    stored = session.execute(select(InvoicePdf.status_version).where(InvoicePdf.invoice_id == invoice.id)
                             .order_by(InvoicePdf.status_version)).scalars().all()
    assert stored == [1, 2]


def test_a_render_that_loses_the_race_returns_its_pdf_and_leaves_the_transaction_usable(
        database, session, sandbox, seller, monkeypatch):
    invoice = eur_invoice(database, session, sandbox, seller)
    real_render = pdf.render_invoice_pdf

    def render_while_another_request_stores_first(inv):
        content = real_render(inv)
        with database.session() as other:
            other.execute(insert(InvoicePdf).values(invoice_id=inv.id, status_version=inv.status_version,
                                                    content=b"%PDF-their-copy"))
            other.commit()
        return content

    monkeypatch.setattr(pdf, "render_invoice_pdf", render_while_another_request_stores_first)
    content = pdf.invoice_pdf(session, invoice, now=NOW)
    assert content.startswith(b"%PDF-") and invoice.number in pdf_text(content)
    session.commit()  # the caller's transaction survived the failed insert
    assert session.scalar(select(func.count()).select_from(InvoicePdf)) == 1
    assert pdf.invoice_pdf(session, invoice, now=NOW) == b"%PDF-their-copy"


def test_drafts_have_no_pdf(database, session, seller):
    account, _ = make_customer(session, country="DE", city="Berlin", postal_code="10115")
    plan = make_plan(session, code="pro-eur", currency="EUR")
    sub = make_subscription(session, account, plan=plan, period_end=PERIOD_END)
    draft = build_subscription_invoice(session, account, sub, plan, period_start=PERIOD_END,
                                       period_end=datetime(2027, 1, 1, tzinfo=timezone.utc), seller=seller,
                                       now=NOW)
    session.commit()
    assert draft.status == "draft"
    with pytest.raises(errors.InvoiceNotIssued):
        pdf.invoice_pdf(session, draft, now=NOW)
    with pytest.raises(errors.InvoiceNotIssued):
        pdf.render_invoice_pdf(draft)
    assert session.scalar(select(func.count()).select_from(InvoicePdf)) == 0


def test_repeated_downloads_serve_the_cached_pdf_until_the_status_changes(
        app, browser, database, session, sandbox, seller, renders):
    # How fast a PDF renders is measured by `portal bench` (pdf_ms_p50), not asserted here.
    invoice = eur_invoice(database, session, sandbox, seller, card=False)
    browser.login()
    url = f"/billing/invoices/{invoice.id}.pdf"

    def download() -> bytes:
        response = browser.get(url)
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        return response.data

    open_copies = [download() for _ in range(5)]
    assert renders == [1], "five downloads of one status version render it once"
    assert len(set(open_copies)) == 1
    assert len(PdfReader(io.BytesIO(open_copies[0])).pages) == 1
    assert invoice.number in pdf_text(open_copies[0]) and "OPEN" in pdf_text(open_copies[0])

    assert mark_paid(invoice, amount_cents=invoice.total_cents, now=NOW, payment_method_label="SEPA transfer",
                     transaction_id="tx_sepa_42")
    session.commit()
    paid_copies = [download() for _ in range(3)]
    assert renders == [1, 2], "the status change renders once more, then the new copy is cached"
    assert len(set(paid_copies)) == 1 and paid_copies[0] != open_copies[0]
    assert "PAID" in pdf_text(paid_copies[0]) and "OPEN" not in pdf_text(paid_copies[0])


def test_the_cut_down_default_stylesheet_lays_out_the_invoice_exactly_as_xhtml2pdfs_own(
        database, session, sandbox, seller):
    # pdf.py passes xhtml2pdf only the default rules for the tags the template uses; a tag added to the
    # template that relied on a dropped rule (bold, headings, lists, links) would change the drawing here.
    from xhtml2pdf import pisa

    invoice = eur_invoice(database, session, sandbox, seller, credit_cents=500)
    html = pdf.render_invoice_html(invoice, page_count=1)

    def page_content(default_css) -> list[bytes]:
        out = io.BytesIO()
        pisa.CreatePDF(html, dest=out, encoding="utf-8", default_css=default_css)
        return [page.get_contents().get_data() for page in PdfReader(io.BytesIO(out.getvalue())).pages]

    assert page_content(pdf._DEFAULT_CSS) == page_content(None)


def test_dropping_the_templates_indentation_changes_nothing_drawn_and_keeps_what_a_customer_typed(
        database, session, sandbox, seller, monkeypatch):
    # pdf.py removes the whitespace between tags before xhtml2pdf walks the document; that must never move
    # anything on the page, nor reach text a customer typed (their "<" and ">" are escaped, so never a tag).
    from xhtml2pdf import pisa

    invoice = eur_invoice(database, session, sandbox, seller, credit_cents=500, name="Zoë >  < Müller")
    stripped = pdf.render_invoice_html(invoice, page_count=1)
    monkeypatch.setattr(pdf, "_BETWEEN_TAGS", re.compile(r"(?!)"))  # matches nothing: the template as written
    as_written = pdf.render_invoice_html(invoice, page_count=1)
    assert len(stripped) < len(as_written)
    assert "Zoë &gt;  &lt; Müller" in stripped

    def page_content(html) -> list[bytes]:
        out = io.BytesIO()
        pisa.CreatePDF(html, dest=out, encoding="utf-8", default_css=pdf._DEFAULT_CSS)
        return [page.get_contents().get_data() for page in PdfReader(io.BytesIO(out.getvalue())).pages]

    assert page_content(stripped) == page_content(as_written)
