"""The server-to-server API under ``/api/v1/``: JSON for the product's servers, authenticated by bearer API
keys, described by an OpenAPI document generated from the schemas (``GET /api/v1/openapi.json``).

Built on Flask-Smorest: marshmallow schemas validate the input (webargs) and describe it in the document.

Adding a route module (e.g. ``portal/web/api_v1/widgets.py``)::

    from flask_smorest import abort
    from .blueprint import api_blueprint
    from .keys import api_actor, current_key
    from .schemas import Text

    bp = api_blueprint("widgets", __name__, description="Widgets: ...")   # endpoints "api_v1_widgets.*"

    @bp.route("/widgets/<code>", methods=["PATCH"])
    @bp.arguments(WidgetPatchSchema)          # the JSON body, validated: a bad field answers 422 by itself
    @bp.response(200, WidgetSchema)           # documents (and dumps) the answer: a dict from api_objects.py
    def update_widget(values, code):
        return api_objects.widget_object(widgets.update(db(), code, values, actor=api_actor(), now=utcnow()))

- ``api_blueprint`` puts the routes under ``/api/v1`` behind the bearer key (401 JSON without one) and
  turns their errors into ``{"error": {"message": ..., "fields": {field: [messages]}}}``.
- ``current_key()`` is the ``ApiKey`` of the request (also ``flask.g.api_key``); ``api_actor()`` is the
  ``Actor`` to pass to services, so their audit rows carry the key's name (every call is audited anyway).
- A field error found by a service: raise ``InvalidInput({"field": "message"})`` (or any ``DomainError``
  with ``field=``): it answers 422 with the field named. Unknown objects: raise ``NotFound(...)`` (404).
  Conflicts: a ``DomainError`` whose status is 409. ``abort(status, message=...)`` works too.
- Register the module in ``MODULES`` below. The browser sweeps in ``tests/web/test_security_sweeps.py`` and
  ``test_fuzz_forms.py`` leave ``api_v1_*`` endpoints to the API's own tests; Schemathesis
  (``tests/integration/test_api_schemathesis.py``) walks every operation of the document.

Cookies are ignored here and CSRF does not apply: the routes read no login session, and a cross-site forged
request carries cookies but never the bearer key, which is the only thing these routes accept.
"""
from __future__ import annotations

from flask import Flask

from ...extensions import csrf
from . import accounts, invoices, plans, portal_sessions, subscriptions, webhooks
from .blueprint import configure

# Each route module's blueprint, in the order their sections appear in the OpenAPI document.
MODULES = (plans, accounts, subscriptions, invoices, portal_sessions, webhooks)


def register(app: Flask) -> None:
    api = configure(app, title="Billing portal API")
    for module in MODULES:
        csrf.exempt(module.bp)  # bearer keys, no cookies: see the module docstring
        api.register_blueprint(module.bp)
