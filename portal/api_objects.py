"""The portal's objects as the product in front sees them: one JSON shape each, used by the API's answers and by
the webhook events that describe a change, so a receiver can store an event's object exactly as the API would
return it. Money is in integer minor units with its currency; times are ISO 8601 in UTC.

A bottom-layer module like ``money``: it reads models and imports nothing above them, so the services that
write webhook events and the web layer's API can both use it.
"""
from __future__ import annotations

from datetime import datetime

from .models import Account, Invoice, Plan, Refund, Subscription, User, WebhookEndpoint


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def plan_object(plan: Plan) -> dict:
    return {"object": "plan", "code": plan.code, "name": plan.name, "interval": plan.interval,
            "price": plan.price_cents, "currency": plan.currency, "self_serve": plan.self_serve}


def account_object(account: Account, *, subscription: Subscription | None) -> dict:
    return {"object": "account", "external_id": account.external_id, "name": account.name,
            "billing_email": account.billing_email,
            "address": {"line1": account.address_line1, "line2": account.address_line2, "city": account.city,
                        "postal_code": account.postal_code, "region": account.region, "country": account.country},
            "vat_number": account.vat_number, "currency": account.currency,
            "subscription_status": subscription.status if subscription is not None else "none",
            "created_at": iso(account.created_at)}


def user_object(user: User, *, external_id: str | None) -> dict:
    """``password_login`` says whether the user has set a password; without one they arrive through portal
    sessions or e-mailed sign-in links."""
    return {"object": "user", "id": f"usr_{user.id}", "account": external_id, "email": user.email,
            "name": user.name, "password_login": bool(user.password_hash), "created_at": iso(user.created_at)}


def subscription_object(subscription: Subscription, *, external_id: str | None, plan: Plan | None = None,
                        scheduled: Plan | None = None) -> dict:
    """``plan`` and ``scheduled`` are for the webhook events, written while a flush is under way: a service
    that set only ``plan_id`` or ``scheduled_plan_id`` has not reloaded the relationships yet."""
    plan = plan or subscription.plan
    scheduled = scheduled if scheduled is not None or subscription.scheduled_plan_id is None \
        else subscription.scheduled_plan
    return {"object": "subscription", "id": f"sub_{subscription.id}", "account": external_id,
            "plan": plan.code, "status": subscription.status,
            "current_period_start": iso(subscription.current_period_start),
            "current_period_end": iso(subscription.current_period_end),
            "trial_end": iso(subscription.trial_end),
            "cancel_at_period_end": subscription.cancel_at_period_end,
            # When a cancel at the period end takes effect: the date the customer is shown ("Cancels on …").
            "cancel_at": iso(subscription.current_period_end) if subscription.cancel_at_period_end else None,
            "scheduled_plan": scheduled.code if scheduled is not None else None,
            "canceled_at": iso(subscription.canceled_at), "created_at": iso(subscription.created_at)}


# The customer's page for an invoice's PDF (``portal/web/invoices.py``, ``invoices.pdf``): the customer logs
# in to open it. Built here so that the API and webhook events (which have no request) give the same URL.
INVOICE_PDF_PATH = "/billing/invoices/{id}.pdf"


def invoice_pdf_url(base_url: str, invoice_id: int) -> str:
    return base_url.rstrip("/") + INVOICE_PDF_PATH.format(id=invoice_id)


def invoice_object(invoice: Invoice, *, external_id: str | None, pdf_url: str | None) -> dict:
    """``pdf_url`` is absolute when the caller knows the portal's address (the API does; events use the
    ``PORTAL_BASE_URL`` setting), else None."""
    return {"object": "invoice", "id": f"inv_{invoice.id}", "number": invoice.number, "account": external_id,
            "status": invoice.status, "currency": invoice.currency, "subtotal": invoice.subtotal_cents,
            "credit_applied": invoice.credit_applied_cents, "tax": invoice.tax_cents, "total": invoice.total_cents,
            "amount_paid": invoice.amount_paid_cents, "amount_due": invoice.amount_due_cents,
            "amount_refunded": invoice.amount_refunded_cents,
            "period_start": iso(invoice.period_start), "period_end": iso(invoice.period_end),
            "issued_at": iso(invoice.issued_at), "due_at": iso(invoice.due_at), "paid_at": iso(invoice.paid_at),
            "pdf_url": pdf_url}


def refund_object(refund: Refund, *, external_id: str | None, invoice_number: str | None) -> dict:
    return {"object": "refund", "id": f"re_{refund.id}", "account": external_id, "invoice": invoice_number,
            "amount": refund.amount_cents, "currency": refund.currency, "status": refund.status,
            "destination": refund.destination, "reason": refund.reason, "created_at": iso(refund.created_at)}


def entitlements_object(*, external_id: str | None, paid_access: bool, status: str, reason: str,
                        plan: str | None, current_period_end: datetime | None) -> dict:
    """The same answer as ``paid_access()``, for the account the product knows by ``external_id``."""
    return {"object": "entitlements", "account": external_id, "paid_access": paid_access, "status": status,
            "reason": reason, "plan": plan, "current_period_end": iso(current_period_end)}


def portal_session_object(*, url: str, expires_at: datetime) -> dict:
    """A portal session as its creator sees it: the single-use URL to send the user's browser to."""
    return {"object": "portal_session", "url": url, "expires_at": iso(expires_at)}


def webhook_endpoint_object(endpoint: WebhookEndpoint, *, secret: str | None = None) -> dict:
    """``secret`` only in the answer that creates the endpoint: it is shown once."""
    shape = {"object": "webhook_endpoint", "id": f"we_{endpoint.id}", "url": endpoint.url,
             "event_types": list(endpoint.event_types or []), "created_at": iso(endpoint.created_at)}
    if secret is not None:
        shape["secret"] = secret
    return shape
