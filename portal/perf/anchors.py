"""The two anchors ``portal bench`` measures beside the portal's own figures, each a WSGI app for gunicorn:

* ``floor_app()``: a bare Flask app answering "ok", nothing else (the framework's floor under the same
  gunicorn settings);
* ``portal_with_static_page(size)``: the portal itself with one more route, ``/bench/static``, answering
  ``size`` fixed bytes as HTML: every hook, header and cookie check a page goes through, none of a page's
  work. The gap between it and GET /billing is what building the page costs.
"""
from __future__ import annotations

STATIC_PATH = "/bench/static"


def floor_app():
    from flask import Flask

    app = Flask("floor")

    @app.get("/")
    def ok():
        return "ok\n", 200, {"Content-Type": "text/plain; charset=utf-8"}

    return app


def portal_with_static_page(size: int):
    from ..cli import app_from_environment

    app = app_from_environment()
    body = (b"<!doctype html><title>static</title>" + b"x" * size)[:size]

    # A plain function on the app, not a blueprint of the product: only the benchmark's server has it.
    def static_page():
        return app.response_class(body, 200, mimetype="text/html")

    app.add_url_rule(STATIC_PATH, "bench_static_page", static_page, methods=["GET"])
    return app
