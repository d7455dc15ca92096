"""E-mails read as a customer reads them: after "Hello," each one's first sentence starts with a capital."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

TEMPLATES = sorted((Path(__file__).parents[2] / "templates" / "email").glob("*.txt"))
TAG = re.compile(r"\{%.*?%\}")


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_the_sentence_after_the_greeting_starts_with_a_capital_letter(template):
    text = template.read_text()
    assert "Hello,\n\n" in text
    after = text.split("Hello,\n\n", 1)[1]
    lines = after.splitlines()[:4]
    # The first line, and each branch of an {% if %} that opens its own first sentence.
    for index, line in enumerate(lines):
        if index and not line.startswith("{%"):
            continue
        words = TAG.sub("", line).strip()
        assert not words or not words[0].isalpha() or words[0].isupper(), f"{template.name}: {line!r}"
