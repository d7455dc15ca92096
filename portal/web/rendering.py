"""One template per page; its blocks double as HTMX partials.

``render`` answers an HTMX request with the named block (plus any out-of-band blocks) and a plain
request with the whole page, from the same template and the same context.
"""
from __future__ import annotations

from flask import current_app, flash, make_response, redirect, request, render_template
from markupsafe import Markup


def render_block(template_name: str, block: str, **context) -> str:
    env = current_app.jinja_env
    template = env.get_template(template_name)
    current_app.update_template_context(context)
    ctx = template.new_context(context)
    return "".join(template.blocks[block](ctx))


def render(template_name: str, *, block: str | None = None, oob: tuple[str, ...] = (), status: int = 200,
           toast: str | None = None, **context):
    """The page, or for HTMX its ``block`` plus ``oob`` blocks swapped out of band."""
    if request.htmx and block:
        parts = [render_block(template_name, block, **context)]
        parts += [render_block(template_name, name, oob_swap=True, **context) for name in oob]
        if toast:
            kind = "error" if status >= 400 else "success"
            parts.append(render_block("base.html", "toast", toast_message=toast, toast_kind=kind, oob_swap=True))
        response = make_response(Markup("").join(Markup(p) for p in parts), status)
    else:
        response = make_response(render_template(template_name, **context), status)
    response.vary.add("HX-Request")
    return response


def done(message: str, location: str, *, partial=None):
    """After a successful action: HTMX gets the fresh partial, a plain form a 303 back to the page."""
    if request.htmx and partial is not None:
        return partial(message)
    flash(message, "success")
    return redirect(location, code=303)


def toast_response(message: str, *, status: int = 200):
    """HTMX: only a toast, out of band, and the page left as it is (``HX-Reswap: none``)."""
    kind = "error" if status >= 400 else "success"
    body = render_block("base.html", "toast", toast_message=message, toast_kind=kind, oob_swap=True)
    response = make_response(body, status)
    response.headers["HX-Reswap"] = "none"
    response.vary.add("HX-Request")
    return response


def go_to(location: str, *, status: int | None = None):
    """Leave the page: HTMX gets ``HX-Redirect`` (a redirect would be swapped into the section), a plain
    request a 303. ``status`` overrides the HTMX answer's status (e.g. 401 when sending to the login page)."""
    if request.htmx:
        response = current_app.response_class("", status or 200)
        response.headers["HX-Redirect"] = location
        return response
    return redirect(location, code=303)
