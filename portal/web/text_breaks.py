"""Where a long e-mail address may wrap: after its "@", and after a dot or hyphen, but never inside a
part and never before its last dot, so a narrow column shows "customer@" over "example.com", never
"customer@example." over "com" or "billin" over "g@". Each part is kept whole and a break is offered
only between parts."""
from __future__ import annotations

import re

from markupsafe import Markup, escape

_PARTS = re.compile(r"[^.\-]*[.\-]|[^.\-]+$")


def _parts(address: str) -> list[str]:
    local, at, domain = (address or "").rpartition("@")
    if not at:
        return _PARTS.findall(address or "")
    labels = _PARTS.findall(domain)
    if len(labels) >= 2 and labels[-2].endswith("."):
        labels[-2:] = [labels[-2] + labels[-1]]  # "example.com" stays one part
    local_parts = _PARTS.findall(local) or [""]
    local_parts[-1] += "@"
    return local_parts + labels


def email_breaks(address: str) -> Markup:
    return Markup("<wbr>").join(Markup('<span class="word">{}</span>').format(escape(p)) for p in _parts(address))
