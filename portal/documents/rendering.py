"""A Jinja environment for e-mails and PDFs that works outside a request (in the worker, in the CLI)."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from ..addresses import address_lines
from ..dates import format_date
from ..wording import full_stop
from ..money import format_money

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@lru_cache(maxsize=1)
def environment() -> Environment:
    # Autoescape HTML (and .html e-mail parts); plain-text parts are not HTML and must not be escaped.
    env = Environment(loader=FileSystemLoader(str(TEMPLATES)),
                      autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
                      trim_blocks=True, lstrip_blocks=True,
                      # The templates ship with the code and change only with a deploy (a restart), so a
                      # compiled template is reused without asking the file system whether it changed: each
                      # renewal renders two e-mails, text and HTML, and that check was a stat per render.
                      auto_reload=False)
    env.filters["money"] = format_money
    env.filters["format_date"] = format_date
    env.filters["address_lines"] = address_lines
    env.filters["full_stop"] = full_stop
    env.globals["base_url"] = "http://127.0.0.1:5000"
    return env


def configure(*, base_url: str) -> None:
    """Links in e-mails point at the portal's public address (``PORTAL_BASE_URL``)."""
    environment().globals["base_url"] = base_url.rstrip("/")


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
