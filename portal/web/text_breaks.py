"""Where long e-mail addresses may wrap: after "@" and after each dot, never inside a word. Each piece is
kept whole and a break is offered only between pieces, so a narrow column never shows "billin-g"."""
from __future__ import annotations

import re

from markupsafe import Markup, escape

_PIECES = re.compile(r"[^@.]+[@.]?|[@.]")


def email_breaks(address: str) -> Markup:
    pieces = _PIECES.findall(address or "")
    return Markup("<wbr>").join(Markup('<span class="word">{}</span>').format(escape(p)) for p in pieces)
