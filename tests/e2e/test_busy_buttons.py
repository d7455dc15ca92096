"""Buttons that wait for the processor show that they are busy and cannot be pressed twice."""
from __future__ import annotations

import re

from playwright.sync_api import expect

from ..helpers import make_invoice
from .test_cards_sandbox import customer, gateway, sign_in, subscribed  # noqa: F401


def hold(page, pattern):
    """Keep matching requests waiting (as a slow processor would) until released; returns the held ones."""
    held = []
    page.route(pattern, lambda route: held.append(route))
    return held


def test_pay_now_is_busy_and_sends_one_request_while_the_payment_page_is_prepared(page, live_server, session,
                                                                                 subscribed):
    invoice = make_invoice(session, subscribed, status="open")
    sign_in(page, live_server)
    held = hold(page, f"**/billing/invoices/{invoice.id}/pay")
    # Press, then (while the payment page is still being prepared) read the button and press again. One
    # script does both: the page is leaving, and Playwright's locators would wait for the next one.
    state = page.evaluate("""() => new Promise(resolve => {
        const button = document.querySelector('form[action$="/pay"] button');
        button.click();
        setTimeout(() => {
            const seen = [button.getAttribute('aria-busy'), button.disabled];
            button.click();
            resolve(seen);
        }, 100);
    })""")
    assert state == ["true", True]
    page.wait_for_timeout(300)  # time for a second request to start, if one could
    assert len(held) == 1
    held[0].continue_()
    expect(page).to_have_url(re.compile(r"/sandbox/checkout/"))


def test_confirm_card_is_busy_until_the_processor_answers(page, live_server, session, subscribed):
    sign_in(page, live_server)
    page.get_by_role("link", name="Add payment method").click()
    page.get_by_label("Cardholder name").fill("Ada Lovelace")
    page.get_by_label("Card number").fill("4242 4242 4242 4242")
    page.get_by_label("Expiry date (MM / YY)").fill("12/30")
    page.get_by_label("Security code").fill("123")
    held = hold(page, re.compile(r"/billing/cards$"))
    confirm = page.get_by_role("button", name="Confirm")
    confirm.click()
    expect(confirm).to_have_attribute("aria-busy", "true")
    expect(confirm).to_be_disabled()
    page.wait_for_timeout(300)
    assert len(held) == 1
    held[0].continue_()
    expect(page.get_by_role("list", name="Saved cards").get_by_role("listitem")).to_have_count(2)
