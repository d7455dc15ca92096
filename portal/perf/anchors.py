"""The two anchors ``portal bench`` measures beside the portal's own figures, and the gunicorn app specs
that start them:

* ``FLOOR_APP`` (``floor_app``): a bare Flask app answering "ok", nothing else (the framework's floor under
  the same gunicorn settings);
* ``static_page_app(size)`` (``static_page_wsgi``): the portal itself with one more route, ``STATIC_PATH``,
  answering ``size`` fixed bytes as HTML: every hook, header and cookie check a page goes through, none of a
  page's work. The gap between it and GET /billing is what building the page costs.

Both live here, with the benchmark, so the product's entry points define nothing only the benchmark uses.
"""
from __future__ import annotations

STATIC_PATH = "/bench/static"
FLOOR_APP = "portal.perf.anchors:floor_app()"


def static_page_app(size: int) -> str:
    return f"portal.perf.anchors:static_page_wsgi({int(size)})"


def floor_app():
    """A bare Flask app answering "ok"."""
    from flask import Flask

    app = Flask("floor")

    @app.get("/")
    def ok():
        return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    return app


def static_page_wsgi(size: int):
    """The portal, configured from the environment as gunicorn runs it (the bench's server always has a
    good secret key, so none of the entry point's start-up checks apply), plus one route answering ``size``
    fixed bytes of HTML."""
    from .. import create_app
    from ..config import load_settings

    app = create_app(load_settings())
    body = (b"<!doctype html><title>static</title>" + b"x" * size)[:size]

    # Added to this app only, not to a blueprint of the product: only the benchmark's server has it.
    def static_page():
        return app.response_class(body, 200, mimetype="text/html")

    app.add_url_rule(STATIC_PATH, "bench_static_page", static_page, methods=["GET"])
    return app
