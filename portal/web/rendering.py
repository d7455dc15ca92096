"""One template per page; its blocks double as HTMX partials. Every HTMX answer is built here.

``render`` answers an HTMX request with the named block (plus any out-of-band blocks) and a plain
request with the whole page, from the same template and the same context. Out-of-band blocks get their
``hx-swap-oob`` attribute from ``render_block`` alone: a block's template never says whether it is being
swapped out of band, so no block can forget to (a block that did forget once rendered the Invoices section
a second time inside the subscription section after Retry payment).
"""
from __future__ import annotations

import re

from flask import current_app, flash, make_response, redirect, request, render_template
from markupsafe import Markup, escape

# How an out-of-band block replaces its namesake in the page. Sections are replaced whole ("true": the
# element with the same id, outerHTML); the toast is a live region that must stay in the page for screen
# readers to announce what is put inside it, so only its content is replaced.
OOB_SWAP = {"toast": "innerHTML"}

# The block's first element: the one htmx matches by id and swaps out of band.
_ROOT = re.compile(r"\A\s*<[A-Za-z][A-Za-z0-9-]*(\s[^>]*)?(?=>)")
_ID = re.compile(r'\sid="[^"]+"')


def render_block(template_name: str, block: str, *, oob_swap: bool | str = False, **context) -> str:
    """One block of a template; with ``oob_swap`` its root element carries ``hx-swap-oob`` (``True``: the
    block's usual swap; a string: that swap, e.g. ``outerHTML:#card-7`` to take another element's place)."""
    env = current_app.jinja_env
    template = env.get_template(template_name)
    current_app.update_template_context(context)
    ctx = template.new_context(context)
    html = "".join(template.blocks[block](ctx))
    if not oob_swap:
        return html
    return _mark_out_of_band(html, block, OOB_SWAP.get(block, "true") if oob_swap is True else oob_swap)


def _mark_out_of_band(html: str, block: str, swap: str) -> str:
    root = _ROOT.match(html)
    attributes = root.group(1) or "" if root else ""
    if root is None or not _ID.search(attributes) or "hx-swap-oob" in attributes:
        # Fail loudly while developing: htmx silently drops an out-of-band element it cannot match by id.
        raise ValueError(f"block {block!r} must start with one element that has an id and no hx-swap-oob")
    return f'{html[:root.end()]} hx-swap-oob="{escape(swap)}"{html[root.end():]}'


def oob_remove(selector: str) -> str:
    """An out-of-band part that removes the element ``selector`` names from the page."""
    return f'<div hx-swap-oob="delete:{escape(selector)}"></div>'


def oob_insert_after(selector: str, html: str) -> str:
    """An out-of-band part that puts ``html`` (rendered markup) right after the element ``selector`` names."""
    return f'<div hx-swap-oob="afterend:{escape(selector)}">{html}</div>'


def oob_answer(parts: list[str], *, toast: str | None = None, status: int = 200):
    """HTMX: only out-of-band parts (and a toast); the request's own target is left as it is
    (``HX-Reswap: none``). For answers that change a few elements of a section, not the whole of it."""
    if toast:
        parts = [*parts, _toast(toast, status)]
    response = make_response(Markup("").join(Markup(p) for p in parts), status)
    response.headers["HX-Reswap"] = "none"
    response.vary.add("HX-Request")
    return response


def _toast(message: str, status: int) -> str:
    kind = "error" if status >= 400 else "success"
    return render_block("base.html", "toast", oob_swap=True, toast_message=message, toast_kind=kind)


def render(template_name: str, *, block: str | None = None, oob: tuple[str, ...] = (), status: int = 200,
           toast: str | None = None, **context):
    """The page, or for HTMX its ``block`` plus ``oob`` blocks swapped out of band."""
    if request.htmx and block:
        parts = [render_block(template_name, block, **context)]
        parts += [render_block(template_name, name, oob_swap=True, **context) for name in oob]
        if toast:
            parts.append(_toast(toast, status))
        response = make_response(Markup("").join(Markup(p) for p in parts), status)
    else:
        response = make_response(render_template(template_name, **context), status)
    response.vary.add("HX-Request")
    return response


def done(message: str, location: str, *, partial=None):
    """After a successful action: HTMX gets the fresh partial (or, without one, the message as a toast),
    a plain form a 303 back to the page."""
    if request.htmx:
        return partial(message) if partial is not None else toast_response(message)
    flash(message, "success")
    return redirect(location, code=303)


def toast_response(message: str, *, status: int = 200):
    """HTMX: only a toast, out of band, and the page left as it is (``HX-Reswap: none``)."""
    response = make_response(_toast(message, status), status)
    response.headers["HX-Reswap"] = "none"
    response.vary.add("HX-Request")
    return response


def go_to(location: str, *, status: int | None = None):
    """Leave the page: HTMX gets ``HX-Redirect`` (a redirect would be swapped into the section), a plain
    request a 303. ``status`` overrides the HTMX answer's status (e.g. 401 when sending to the login page)."""
    if request.htmx:
        response = current_app.response_class("", status or 200)
        response.headers["HX-Redirect"] = location
        response.vary.add("HX-Request")
        return response
    return redirect(location, code=303)
