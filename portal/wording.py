"""Small rules of written English shared by pages, messages and e-mails."""
from __future__ import annotations


def full_stop(text: str) -> str:
    """End a sentence with ``text``: a name that already ends in a full stop ("Acme Analytics Inc.") gets
    no second one."""
    text = (text or "").rstrip()
    return text if text.endswith((".", "!", "?")) else f"{text}."
