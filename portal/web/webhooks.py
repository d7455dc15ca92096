"""Stripe webhooks: verified by their signature (not CSRF), applied once, answered fast."""
from __future__ import annotations

import json
import logging

import stripe
from flask import Blueprint, current_app, request

from ..billing.events import apply_event
from ..extensions import csrf
from ..models import utcnow
from .context import gateway, retry_policy, settings

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__)

# Stripe's own default: a signature older than this is a replay.
TOLERANCE_SECONDS = 300


@bp.post("/stripe/webhook")
@csrf.exempt  # Stripe cannot send our CSRF token; the signature below is what protects this route
def stripe_webhook():
    """Verify the Stripe-Signature header, then apply the event exactly once."""
    secret = settings().stripe_webhook_secret
    if not secret:
        log.error("a Stripe webhook arrived but STRIPE_WEBHOOK_SECRET is not set; refusing it")
        return {"error": "webhook signing secret not configured"}, 400
    payload = request.get_data()
    try:
        stripe.Webhook.construct_event(payload, request.headers.get("Stripe-Signature", ""), secret,
                                       tolerance=TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError):
        return {"error": "invalid signature"}, 400
    event = json.loads(payload)
    if not isinstance(event, dict) or "id" not in event or "type" not in event:
        return {"error": "not an event"}, 400
    outcome = apply_event(current_app.extensions["portal.db"], gateway(), event, now=utcnow(), policy=retry_policy())
    return {"received": True, "outcome": outcome}, 200
