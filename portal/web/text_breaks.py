"""Where a long e-mail address may wrap: after its "@", never inside the name or the domain. Each part is
kept whole and a break is offered only between them, so a narrow column shows "customer@" over
"example.com", never "customer@example." over "com" or "billin" over "g@"."""
from __future__ import annotations

import re

from markupsafe import Markup, escape

_PIECES = re.compile(r"[^@]*@|[^@]+")


def email_breaks(address: str) -> Markup:
    pieces = _PIECES.findall(address or "")
    return Markup("<wbr>").join(Markup('<span class="word">{}</span>').format(escape(p)) for p in pieces)
