"""The "no GET changes anything" sweep in Stripe mode: the app configured with the Stripe gateway against
localstripe (Checkout through its stand-in), in every data state of the sandbox sweep. Stripe mode renders
other branches of the same pages (Stripe.js card field, no sandbox pages, Checkout URLs at Stripe), and its
GETs must leave our tables and Stripe alone just the same."""
from __future__ import annotations

import secrets

import pytest

from portal.billing.payment_methods import cards
from portal.audit import Actor
from portal.models import utcnow

from ..web.test_security_sweeps import STATES, World, sweep_every_get

pytestmark = pytest.mark.stripe


class StripeCards:
    """How a world saves cards in Stripe mode: a SetupIntent confirmed by Stripe.js, as the browser does."""

    def __init__(self, stripe_js):
        self.stripe_js = stripe_js

    def save(self, session, gateway, account, *, number="4242424242424242", default=False):
        intent = cards.start_card_setup(session, gateway, account.id, save_as_default=default,
                                        idempotency_key=f"setup-{secrets.token_hex(8)}")
        cvc = "1234" if number.startswith("3") else "123"
        confirmed = self.stripe_js.confirm_card_setup(intent.client_secret, number=number, cvc=cvc)
        assert confirmed.status_code == 200, confirmed.text
        return cards.complete_card_setup(session, gateway, account.id, intent.id, actor=Actor.system(), now=utcnow())


@pytest.fixture
def stripe_overrides(stripe_overrides, standin):
    """Stripe mode through the Checkout stand-in, so that Pay now can open a Checkout Session."""
    return {**stripe_overrides, "stripe_api_base": standin.url}


@pytest.mark.parametrize("state", STATES)
def test_no_get_request_changes_anything_in_stripe_mode(stripe_app, database, session, stripe_gateway, stripe_js,
                                                        state):
    world = World(stripe_app, session, stripe_gateway, state=state, card_seeder=StripeCards(stripe_js))
    answered = sweep_every_get(stripe_app, database, world)
    assert not any(rule.startswith("/sandbox/") for rule in answered)  # the sandbox's pages are not registered
    assert "/billing/cards/new" in answered and "/billing/invoices/<int:invoice_id>/paid" in answered
    assert [rule for rule, status in answered.items() if status == 404] == []
