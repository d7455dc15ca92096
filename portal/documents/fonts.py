"""The faces an invoice PDF is drawn in, chosen per document by the characters it prints.

reportlab draws a run of text in one font; xhtml2pdf splits a run by a font-family list, each character
going to the first family that has a glyph for it. So a document names the families it needs, in order:

* **Helvetica**, one of the PDF base-14 fonts: nothing is embedded or parsed, so it is the cheapest face
  there is. It draws through the WinAnsi encoding (Windows-1252): ASCII, Western European letters such as
  "ë" and "ß", and the euro sign, bullet, dashes and "×" -- most invoices need nothing else. It is
  registered under its own name (``invoicehelvetica``) with Python's cp1252 codec: reportlab's own WinAnsi
  codec writes the bullet as byte 0x7F, which viewers draw as a bullet but text extraction (copy and
  paste, pypdf) reads back as a control character; cp1252 writes it as 0x95, the bullet's own code.
* **DejaVu Sans** (shipped in ``data/fonts/``) when the text has a character WinAnsi lacks, such as Polish
  "Ł", Turkish "Ğ", Greek, Cyrillic or the minus sign "−". It then draws the whole document, so a name is
  never drawn in two faces letter by letter.
* **WenQuanYi Micro Hei** (shipped in ``data/fonts/``) only for the characters neither of those has:
  Chinese, Japanese and Korean. Parsing it takes about 0.1 s and its tables are 5 MB, which is why it is
  not the default face.

Each TrueType face is parsed once per process, on the first document that needs it, and handed to
xhtml2pdf as a known family, so no document declares an @font-face: that would make xhtml2pdf read and
hash the whole font file again for every document. Both faces are embedded as subsets of the glyphs
used. Nothing is read from a system font path.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from reportlab.lib.fonts import addMapping
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from xhtml2pdf import default as xhtml2pdf_defaults

FONTS_DIR = Path(__file__).resolve().parent.parent / "data" / "fonts"

HELVETICA = "invoicehelvetica"
_TEXT_CODEC = "cp1252"  # the reportlab encoding of this name writes /WinAnsiEncoding, with no differences


@dataclass(frozen=True)
class Face:
    """A TrueType face shipped with the portal. ``family`` is both its CSS family and its reportlab name."""
    family: str
    file: Path
    subfont_index: int = 0  # the face inside a .ttc collection


# DejaVu Sans 2.37 (Bitstream Vera licence with the DejaVu changes in the public domain), unmodified.
LATIN = Face("invoicelatin", FONTS_DIR / "DejaVuSans.ttf")
# The .ttc holds "Micro Hei" (0) and "Micro Hei Mono" (1).
CJK = Face("invoicecjk", FONTS_DIR / "wqy-microhei.ttc", subfont_index=0)

_lock = threading.Lock()


def _make_known(family: str) -> None:
    """Map every weight and style of ``family`` to itself and tell xhtml2pdf about it. Called under _lock."""
    # One weight and style only: bold or italic text is drawn in the same face rather than faked.
    for bold in (0, 1):
        for italic in (0, 1):
            addMapping(family, bold, italic, family)
    # Every xhtml2pdf document starts from a copy of this table, so the family resolves without an
    # @font-face (and without xhtml2pdf reading a font file again).
    xhtml2pdf_defaults.DEFAULT_FONT[family] = family


@lru_cache(maxsize=1)
def register_helvetica() -> None:
    with _lock:
        if HELVETICA not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerEncoding(pdfmetrics.Encoding(_TEXT_CODEC, base="WinAnsiEncoding"))
            pdfmetrics.registerFont(pdfmetrics.Font(HELVETICA, "Helvetica", _TEXT_CODEC))
        _make_known(HELVETICA)


@lru_cache(maxsize=None)
def register(face: Face) -> frozenset[int]:
    """Parse ``face`` and make it known to reportlab and xhtml2pdf (once per process); returns the code
    points it has glyphs for."""
    with _lock:
        if face.family not in pdfmetrics.getRegisteredFontNames():
            pdfmetrics.registerFont(TTFont(face.family, str(face.file), subfontIndex=face.subfont_index))
        _make_known(face.family)
    return frozenset(pdfmetrics.getFont(face.family).face.charToGlyph)


@lru_cache(maxsize=1)
def winansi() -> frozenset[int]:
    """The code points Helvetica can draw: those of the WinAnsi (Windows-1252) encoding."""
    points = set()
    for byte in range(0x20, 0x100):
        try:
            points.add(ord(bytes([byte]).decode("cp1252")))
        except UnicodeDecodeError:  # the five unassigned bytes
            pass
    return frozenset(points)


def families_for(text: str) -> tuple[str, ...]:
    """The font-family list for a document printing ``text``: Helvetica or DejaVu Sans first, then the
    CJK face only when some character needs it. Registers the faces it names."""
    register_helvetica()
    # ASCII is in every face, and most documents have nothing else: no set of the whole text needed.
    rest = {ord(c) for c in set(text) if ord(c) > 0x7E and not c.isspace()} - winansi()
    if not rest:
        return (HELVETICA,)
    missing = rest - register(LATIN)
    cjk = missing & register(CJK) if missing else set()
    # Helvetica stays the main face when the only characters it lacks are ones the CJK face draws.
    main = HELVETICA if rest <= cjk else LATIN.family
    return (main, CJK.family) if cjk else (main,)
