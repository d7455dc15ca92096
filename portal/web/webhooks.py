"""Stripe webhooks: verified by their signature (not CSRF), applied once, answered fast."""
from __future__ import annotations

import json
import logging

import stripe
from flask import Blueprint, request

from ..billing.collecting.events import apply_event
from ..billing.collecting.payloads import MalformedEvent
from ..extensions import csrf
from ..models import utcnow
from .context import database, gateway, retry_policy, settings

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
        # The signature alone: construct_event would also build a stripe.Event, and fails with an
        # AttributeError (a 500) on a signed body that is JSON but not an object.
        stripe.WebhookSignature.verify_header(payload, request.headers.get("Stripe-Signature", ""), secret,
                                              tolerance=TOLERANCE_SECONDS)
    except (stripe.SignatureVerificationError, ValueError):
        return {"error": "invalid signature"}, 400
    try:
        event = json.loads(payload)
    except ValueError:
        return {"error": "malformed event", "detail": "The body is not JSON."}, 400
    try:
        # Signed is not the same as well formed: apply_event checks the envelope (id, type, data.object)
        # before anything else, and each handler its fields; the sandbox's deliveries take the same path.
        outcome = apply_event(database(), gateway(), event, now=utcnow(),
                              policy=retry_policy())
    except MalformedEvent as exc:
        log.warning("refused a malformed Stripe event %r: %s", event.get("id") if isinstance(event, dict) else None,
                    exc.message)
        return {"error": "malformed event", "detail": exc.message}, 400
    return {"received": True, "outcome": outcome}, 200
