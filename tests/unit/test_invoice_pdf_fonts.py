"""Which faces an invoice PDF is drawn in: Helvetica for text WinAnsi covers, DejaVu Sans for other Latin
letters, the CJK face only for the characters that need it; every character of a name printed, read back
with pypdf, and none of it left to a face without the glyph."""
from __future__ import annotations

import io
import logging
from datetime import timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

import portal
from portal.documents import fonts, pdf
from portal.models import InvoiceLine

from .test_invoice_pdf import NOW, eur_invoice, pdf_text

LATIN_ONLY = "Zoë Müller-Ruiz"
POLISH_TURKISH = "Łukasz Öztürk Ğ"
CHINESE = "李雷"
EVERYTHING = "Zoë Łukasz 李雷 Ğ"


def _face_name(font) -> str:
    name = str(font["/BaseFont"]).lstrip("/")
    if font.get("/Subtype") == "/Type1":
        return name
    # An embedded TrueType subset carries a six-letter tag ("ABCDEF+"), and its outlines; the whole 5 MB
    # file would carry no tag.
    descriptor = font.get("/FontDescriptor") or font["/DescendantFonts"][0].get_object()["/FontDescriptor"]
    assert "+" in name and "/FontFile2" in descriptor.get_object(), name
    return name.split("+", 1)[1].removesuffix("-0")


# What each face can draw, by the name the PDF gives it.
COVERAGE = {"Helvetica": fonts.winansi, "DejaVuSans": lambda: fonts.register(fonts.LATIN),
            "WenQuanYiMicroHei": lambda: fonts.register(fonts.CJK)}


def drawn_faces(content: bytes) -> set[str]:
    """The faces the PDF draws text in, each run checked against that face's character map: text
    extraction alone would also "find" a character drawn as an empty box. Fonts a page lists but never
    draws with (reportlab lists Helvetica on every page) are not counted."""
    runs = []

    def visit(text, cm, tm, font, size):
        if font is not None and text.strip():
            runs.append((_face_name(font), text))

    for page in PdfReader(io.BytesIO(content)).pages:
        page.extract_text(visitor_text=visit)
    for face, text in runs:
        assert {ord(c) for c in text if not c.isspace()} <= COVERAGE[face](), (face, text)
    return {face for face, _ in runs}


def embedded_faces(content: bytes) -> set[str]:
    """The faces whose outlines the PDF carries."""
    names = set()
    for page in PdfReader(io.BytesIO(content)).pages:
        for ref in page["/Resources"]["/Font"].values():
            if ref.get_object().get("/Subtype") != "/Type1":
                names.add(_face_name(ref.get_object()))
    return names


@pytest.mark.parametrize(("name", "expected"), [
    pytest.param(LATIN_ONLY, {"Helvetica"}, id="latin-1: built-in Helvetica, nothing embedded"),
    pytest.param(POLISH_TURKISH, {"DejaVuSans"}, id="polish-turkish: DejaVu Sans"),
    pytest.param(CHINESE, {"Helvetica", "WenQuanYiMicroHei"}, id="chinese: Helvetica and the CJK face"),
    pytest.param(EVERYTHING, {"DejaVuSans", "WenQuanYiMicroHei"}, id="all: DejaVu and the CJK face"),
])
def test_every_character_prints_in_a_face_that_has_it_and_the_cjk_face_only_when_needed(
        database, session, sandbox, seller, caplog, name, expected):
    invoice = eur_invoice(database, session, sandbox, seller, name=name)
    with caplog.at_level(logging.WARNING, logger="xhtml2pdf"):
        content = pdf.render_invoice_pdf(invoice)
    # xhtml2pdf warns for each character no face of the document has a glyph for (it would print blank).
    assert [r.getMessage() for r in caplog.records if r.name.startswith("xhtml2pdf")] == []

    text = pdf_text(content)
    assert name in text
    assert "Total €23.80" in text and "Visa •••• 4242" in text  # the euro sign and the bullet
    assert "1 Dec 2026 – 1 Jan 2027" in text and "Page 1 of 1" in text
    assert drawn_faces(content) == expected
    assert embedded_faces(content) == expected - {"Helvetica"}  # the CJK face only when it draws something
    if "WenQuanYiMicroHei" not in expected:
        assert len(content) <= 100_000


def test_a_latin_script_invoice_is_small_and_a_credit_minus_sign_prints(database, session, sandbox, seller):
    # "−" (U+2212) is not in WinAnsi: the credit line moves the document to DejaVu Sans, still no CJK face.
    invoice = eur_invoice(database, session, sandbox, seller, name=POLISH_TURKISH, credit_cents=500)
    content = pdf.render_invoice_pdf(invoice)
    assert "Credits applied −€5.00" in pdf_text(content)
    assert drawn_faces(content) == embedded_faces(content) == {"DejaVuSans"}
    assert len(content) <= 100_000


def test_an_invoice_longer_than_a_page_counts_its_pages(database, session, sandbox, seller):
    invoice = eur_invoice(database, session, sandbox, seller, name=CHINESE)
    invoice.tax_lines, invoice.refunds  # loaded before the lines change, so no flush is needed later
    start = invoice.lines[0].period_start
    # Extra lines in memory only (never flushed: an issued invoice's lines do not change).
    with session.no_autoflush:
        for n in range(70):
            invoice.lines.append(InvoiceLine(position=n + 1, description=f"Seat {n + 1} 李雷",
                                             period_start=start, period_end=start + timedelta(days=30),
                                             quantity=1, unit_amount_cents=100, amount_cents=100))
        try:
            content = pdf.render_invoice_pdf(invoice)
        finally:
            session.rollback()
    pages = PdfReader(io.BytesIO(content)).pages
    assert len(pages) > 1
    for number, page in enumerate(pages, start=1):
        assert f"Page {number} of {len(pages)}" in page.extract_text()
    assert "Seat 70 李雷" in pdf_text(content)


@pytest.mark.parametrize(("text", "families"), [
    ("Invoice INV-0001 for Acme Inc. $20.00", ("invoicehelvetica",)),
    ("Zoë Müller · Friedrichstraße · €20.00 · •••• 4242 – 2 × €10.00 — OPEN", ("invoicehelvetica",)),
    ("Łukasz", ("invoicelatin",)),
    ("Ğ", ("invoicelatin",)),
    ("−€5.00", ("invoicelatin",)),
    ("Владимир", ("invoicelatin",)),
    ("李雷 €20.00", ("invoicehelvetica", "invoicecjk")),
    ("김민준", ("invoicehelvetica", "invoicecjk")),
    ("Zoë Łukasz 李雷 Ğ", ("invoicelatin", "invoicecjk")),
])
def test_the_fonts_are_chosen_by_the_characters_of_the_text(text, families):
    assert fonts.families_for(text) == families


def test_the_faces_come_from_the_package_and_cover_what_they_are_chosen_for():
    for face in (fonts.LATIN, fonts.CJK):
        assert face.file.resolve().is_relative_to(Path(portal.__file__).resolve().parent)
    latin, cjk = fonts.register(fonts.LATIN), fonts.register(fonts.CJK)
    assert {ord(c) for c in "ŁłĞğŞşŐőŽžĆćĘęŃńŚśŹźŻż−€•–"} <= latin
    assert {ord(c) for c in "李雷김민준あア"} <= cjk
    assert {ord(c) for c in "ëéßüÖ€•–—×·"} <= fonts.winansi()
    assert not {ord(c) for c in "ŁĞ−李"} & fonts.winansi()
