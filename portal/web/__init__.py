"""The web layer: blueprints that parse input, call one service and render a page or a block.

The top layer, and with the app factory (``portal/__init__.py``), ``portal/extensions.py`` and
``portal/cli.py`` the only code that imports Flask, Flask-Login or Werkzeug. It may import every service
package; nothing but the app factory imports it.
"""
from __future__ import annotations

from flask import Flask, g, get_flashed_messages
from flask_wtf.csrf import generate_csrf

from ..addresses import address_lines
from ..dates import format_date
from ..wording import full_stop
from ..money import format_money
from ..billing.collecting.refunds import refund_phrase
from . import (account, api, auth, billing, billing_info, cards, dunning, payment_methods, invoices, webhooks, errors, health,
               security, staff)
from . import impersonation, plan, sign_in, staff_actions, staff_plan
from .api_v1 import register as register_api_v1
from .audit_display import detail_lines
from .text_breaks import email_breaks
from .context import new_key
from .links import CardLinks, url_pattern
from .converters import BoundedIntConverter
from .sessions import PortalSessionInterface


def register(app: Flask) -> None:
    settings = app.extensions["portal.settings"]
    app.session_interface = PortalSessionInterface()
    # Before any blueprint: rules pick their converters when they are added to the URL map.
    app.url_map.converters["int"] = BoundedIntConverter
    app.register_blueprint(health.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(sign_in.bp)  # portal sessions and e-mailed sign-in links
    app.register_blueprint(billing.bp)
    app.register_blueprint(cards.bp)
    app.register_blueprint(payment_methods.bp)
    app.register_blueprint(billing_info.bp)
    app.register_blueprint(account.bp)
    app.register_blueprint(invoices.bp)
    app.register_blueprint(webhooks.bp)
    app.register_blueprint(api.bp)
    register_api_v1(app)  # the server-to-server API under /api/v1 (bearer keys, OpenAPI)
    app.register_blueprint(dunning.bp)
    app.register_blueprint(plan.bp)  # Manage plan: change, cancel, keep, resubscribe
    app.register_blueprint(staff.bp)
    app.register_blueprint(staff_actions.bp)  # the console's refunds, credits and invoice actions
    app.register_blueprint(staff_plan.bp)  # the console's plan changes and cancels, and the reasons report
    impersonation.register(app)  # app-wide: read-only while viewing as a customer, and the banner
    if settings.processor == "sandbox":
        # The sandbox's checkout page and 3-D Secure step stand in for Stripe's and the bank's.
        from ..payments.sandbox import pages as sandbox_pages

        app.register_blueprint(sandbox_pages.bp)
    if settings.demo:
        # Demo mode only: the mailbox shows every account's e-mails to anyone logged in.
        from ..demo import mailbox

        app.register_blueprint(mailbox.bp)
    errors.register(app)
    security.register(app)
    auth.register_login_manager(app)

    app.jinja_env.filters["money"] = format_money
    app.jinja_env.filters["format_date"] = format_date
    app.jinja_env.filters["refund_phrase"] = refund_phrase
    app.jinja_env.filters["detail_lines"] = detail_lines
    app.jinja_env.filters["address_lines"] = address_lines
    app.jinja_env.filters["full_stop"] = full_stop
    app.jinja_env.filters["email_breaks"] = email_breaks
    app.jinja_env.globals.update(
        processor=settings.processor,
        test_mode=settings.test_mode,
        demo_mode=settings.demo,
        product_name=settings.product_name,
        stripe_publishable_key=settings.stripe_publishable_key,
        stripe_js_url=settings.stripe_js_url,
        get_flashed_messages=get_flashed_messages,
        request_key=new_key,  # a fresh idempotency key for each form a page renders
        url_pattern=url_pattern,  # a list's row links without a url_for per row
        card_links=CardLinks,
        csrf_token=csrf_token,
    )


def csrf_token() -> str:
    """The CSRF token for a page's forms, worked out once per request. Flask-WTF's ``generate_csrf`` gives
    the same token for the whole request too, but reads its settings on each call, and Billing details has
    some twenty forms."""
    token = g.get("portal_csrf_token")
    if token is None:
        token = g.portal_csrf_token = generate_csrf()
    return token
