"""The two anchors ``portal bench`` measures beside the portal's own figures, as gunicorn app specs. The
apps themselves are in ``portal/cli.py`` (one of the few modules that may import Flask):

* ``FLOOR_APP``: a bare Flask app answering "ok", nothing else (the framework's floor under the same
  gunicorn settings);
* ``static_page_app(size)``: the portal itself with one more route, ``STATIC_PATH``, answering ``size``
  fixed bytes as HTML: every hook, header and cookie check a page goes through, none of a page's work. The
  gap between it and GET /billing is what building the page costs.
"""
from __future__ import annotations

STATIC_PATH = "/bench/static"
FLOOR_APP = "portal.cli:bench_floor_app()"


def static_page_app(size: int) -> str:
    return f"portal.cli:bench_static_page_app({int(size)})"
