"""One pass of the background worker: processor events and reconciliation, renewals (with payments),
then the outbox and the webhook deliveries."""
from __future__ import annotations

from datetime import datetime

from .billing.collecting.collection import run_retries
from .billing.collecting.dunning import RetryPolicy, send_card_expiry_reminders
from .billing.collecting.events import deliver_sandbox_events, reconcile
from .billing.collecting.refunds import settle_pending_refunds
from .billing.subscriptions.renewals import run_renewals
from .billing.invoicing.seller import Seller
from .config import Settings
from .db import Database
from .notifications.sender import build_transport, send_pending
from .notifications.webhook_delivery import deliver_pending
from .payments.gateway import PaymentGateway


def run_once(settings: Settings, database: Database, gateway: PaymentGateway, seller: Seller, *,
             now: datetime) -> str:
    # The retry schedule is the settings' own, passed down to everything that may record a failure.
    policy = RetryPolicy(settings.retry_schedule)
    # Outcomes first (the sandbox's delayed events, answers we never recorded), so a renewal never
    # retries an invoice that was in fact paid a moment ago.
    events = deliver_sandbox_events(database, gateway, now=now, policy=policy)
    settled = reconcile(database, gateway, now=now, policy=policy)
    refunds = settle_pending_refunds(database, gateway, now=now)
    stats = run_renewals(database, gateway, seller, now=now, policy=policy)
    retries = run_retries(database, gateway, now=now, policy=policy)
    reminders = send_card_expiry_reminders(database, now=now)
    # After the renewals, so the invoices they just issued go out in this same pass.
    mail = send_pending(database, build_transport(settings), now=now)
    # Last, so the product hears about everything this pass changed in the same pass.
    hooks = deliver_pending(database, base_url=settings.base_url, timeout=settings.webhook_timeout, now=now)
    summary = (f"{now.isoformat()} renewals: {stats.invoiced} invoiced, {stats.paid} paid, {stats.failed} failed, "
               f"{stats.no_card} without card, {stats.settled} settled; "
               f"retries: {retries['retried']} ({retries['paid']} paid); expiry reminders {reminders}; "
               f"reconciled {settled['settled']}/{settled['checked']}, refunds settled {refunds}; "
               f"sandbox events {events}; "
               f"e-mail: {mail.sent} sent, {mail.retrying} to retry, {mail.failed} failed; "
               f"webhooks: {hooks.delivered} delivered, {hooks.retrying} to retry, {hooks.failed} failed")
    if mail.unavailable:
        summary += f" (stopped early: {mail.unavailable})"
    return summary
