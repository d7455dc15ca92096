"""Every HTMX action on Billing details, applied to the page it is fired from the way htmx applies it.

Each case loads the page (as the browser has it), finds the element that fires the request, posts what
that form would post, then swaps the answer in: main swap into the inherited ``hx-target`` with the
inherited ``hx-swap`` (or ``HX-Reswap``), out-of-band elements onto their namesakes. Afterwards every
section is on the page exactly once, no id twice, and no out-of-band element was dropped. (An Invoices
section sent back without ``hx-swap-oob`` lands inside the Current subscription section: twice on the page.)
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from portal.billing.payment_methods import cards
from portal.audit import Actor
from portal.billing.subscriptions.renewals import run_renewals
from portal.billing.invoicing.seller import Seller
from portal.models import Invoice, utcnow

from ..helpers import POLICY, add_card, make_customer, make_invoice, make_subscription
from .htmx_swap import apply, duplicate_ids, form_data, parse, target_and_swap, trigger

DAY0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
SECTIONS = ("subscription", "payment-details", "billing-address", "invoices", "credits", "toast")


@dataclass
class World:
    account_id: int
    default: int      # the default card: saved fine, every charge declined
    other: int        # a Mastercard that charges fine
    open: int         # the renewal invoice the declined charge left open
    paid: int


@pytest.fixture
def world(app, browser, session, gateway, settings) -> World:
    account, _ = make_customer(session, region="MA", postal_code="01101", address_line1="1 Main St", city="Boston")
    default = add_card(session, gateway, account, number="4000000000000341", default=True)
    other = add_card(session, gateway, account, number="5555555555554444")
    sub = make_subscription(session, account, period_end=DAY0)
    make_invoice(session, account, status="paid", issued_at=DAY0 - timedelta(days=60))
    run_renewals(app.extensions["portal.db"], gateway, Seller.from_settings(settings),
                 now=DAY0 + timedelta(hours=1), policy=POLICY)
    invoices = {i.status: i.id for i in session.query(Invoice).filter_by(account_id=account.id)}
    browser.login()
    session.expire_all()
    assert session.get(type(sub), sub.id).status == "past_due"
    return World(account.id, default.id, other.id, invoices["open"], invoices["paid"])


def pay_with_the_good_card(session, gateway, world: World) -> None:
    cards.set_default_card(session, gateway, world.account_id, world.other, actor=Actor.system(), now=utcnow())


def many_invoices(session, gateway, world: World) -> None:
    from portal.models import Account

    account = session.get(Account, world.account_id)
    for months in range(2, 15):
        make_invoice(session, account, status="paid", issued_at=DAY0 - timedelta(days=30 * months + 1))


@dataclass
class Action:
    name: str
    page: str                    # where the browser is (the full page, no HTMX)
    method: str
    url: str
    status: int
    expect: str                  # what the customer then reads on the page
    data: dict = field(default_factory=dict)
    fired_by_page: bool = True   # False: no element sends it (a stale tab, a hand-made request)
    prepare: Callable | None = None
    label: str | None = None     # which of several elements sending the same request (by its text)


def form_in_place(name: str, open_url: str, save_url: str, cancel_url: str, *, opened: str, saved: tuple[str, dict],
                  refused: tuple[str, str, dict], closed: str) -> list[Action]:
    """The four actions of a form that opens in its section: open it, save it, have it refused (``refused`` is
    the case's name, what the customer reads, what is posted), and cancel it."""
    refused_as, refusal, refused_data = refused
    return [
        Action(f"open {name}", "/billing", "get", open_url, 200, opened),
        Action(f"save {name}", open_url, "post", save_url, 200, saved[0], saved[1]),
        Action(f"{name} {refused_as}", open_url, "post", save_url, 422, refusal, refused_data),
        Action(f"cancel {name}", open_url, "get", cancel_url, 200, closed),
    ]


NEW_CARD = {"cardholder_name": "Ada Lovelace", "expiry": "12 / 30", "cvc": "123"}
ACTIONS = [
    Action("open add card", "/billing", "get", "/billing/cards/new", 200, "Never enter a real card here",
           label="Add payment method"),
    Action("update payment method", "/billing", "get", "/billing/cards/new", 200, "Never enter a real card here",
           label="Update payment method"),
    Action("add card", "/billing/cards/new", "post", "/billing/cards", 200, "Visa •••• 4242 was added",
           {**NEW_CARD, "number": "4242 4242 4242 4242"}),
    Action("add card as default", "/billing/cards/new", "post", "/billing/cards", 200,
           "Retry payment: $21.25 with Visa •••• 4242",
           {**NEW_CARD, "number": "4242 4242 4242 4242", "save_as_default": "y"}),
    Action("add card declined", "/billing/cards/new", "post", "/billing/cards", 422, "Your card was declined",
           {**NEW_CARD, "number": "4000 0000 0000 0002"}),
    Action("add card with a wrong number", "/billing/cards/new", "post", "/billing/cards", 422, "Add a new card",
           {**NEW_CARD, "number": "4242 4242 4242 4241"}),
    Action("add card asking for 3-D Secure", "/billing/cards/new", "post", "/billing/cards", 200,
           "Confirm this card with your bank", {**NEW_CARD, "number": "4000 0025 0000 3155"}),
    Action("cancel add card", "/billing/cards/new", "get", "/billing/cards", 200, "Add payment method"),
    Action("choose PayPal", "/billing/cards/new", "get", "/billing/payment-methods/paypal/new", 200,
           "Continue to PayPal"),
    Action("choose bank account on a monthly plan", "/billing/cards/new", "get", "/billing/payment-methods/bank/new",
           200, "Bank accounts can be added only to annual plans"),
    Action("back to the card form", "/billing/payment-methods/paypal/new", "get", "/billing/cards/new", 200,
           "Never enter a real card here", label="Card"),
    *form_in_place("edit", "/billing/cards/{other}/edit", "/billing/cards/{other}", "/billing/cards",
                   opened="Only the expiry date and name",
                   saved=("Mastercard •••• 4444 was updated", {"expiry": "11 / 31"}),
                   refused=("with a past expiry", "Only the expiry date and name", {"expiry": "01 / 20"}),
                   closed="Mastercard"),
    Action("set default", "/billing", "post", "/billing/cards/{other}/default", 200,
           "Mastercard •••• 4444 is now your default card"),
    Action("set as backup", "/billing", "post", "/billing/cards/{other}/backup", 200,
           "Mastercard •••• 4444 is now your backup payment method"),
    Action("open delete", "/billing", "get", "/billing/cards/{other}/delete", 200, "This can't be undone"),
    Action("delete", "/billing/cards/{other}/delete", "post", "/billing/cards/{other}/delete", 200,
           "Mastercard •••• 4444 was deleted"),
    # The default card's menu offers no Delete (it says why instead), so no page sends that refused POST;
    # test_cards.py posts it anyway, as a page and as a partial.
    Action("cancel delete", "/billing/cards/{other}/delete", "get", "/billing/cards", 200, "Mastercard"),
    *form_in_place("address", "/billing/address/edit", "/billing/address", "/billing/address",
                   opened="Postal or ZIP code", saved=("Your billing information was saved", {"city": "Springfield"}),
                   refused=("with a missing city", "highlighted field", {"city": ""}), closed="1 Main St"),
    Action("retry payment declined", "/billing", "post", "/billing/retry-payment", 402,
           "failed: Your card was declined"),
    Action("retry payment paid", "/billing", "post", "/billing/retry-payment", 200,
           "Your subscription is active again", prepare=pay_with_the_good_card),
    Action("email me a copy", "/billing", "post", "/billing/invoices/{open}/email", 200, "is on its way"),
    Action("show more invoices", "/billing", "get", "/billing/invoices?cursor={cursor}", 200, "Download PDF",
           prepare=many_invoices),
    Action("pay now on a paid invoice", "/billing", "post", "/billing/invoices/{paid}/pay", 409, "",
           fired_by_page=False),
    Action("an expired form", "/billing", "post", "/billing/cards/{other}/default", 400,
           "This form has expired", {"csrf_token": ""}),
    Action("another account's card", "/billing", "post", "/billing/cards/2147483647/default", 404,
           "That card does not exist", fired_by_page=False),
]


def text_of(node) -> str:
    return " ".join(node.text().split())


@pytest.mark.parametrize("action", ACTIONS, ids=[a.name for a in ACTIONS])
def test_each_htmx_action_leaves_every_section_on_the_page_once(browser, session, gateway, world, action):
    if action.prepare:
        action.prepare(session, gateway, world)
    ids = {"default": world.default, "other": world.other, "open": world.open, "paid": world.paid}
    page = parse(browser.get(action.page.format(**ids)).get_data(as_text=True))
    if "{cursor}" in action.url:
        more = page.by_id("invoice-more")
        link = next(e for e in more.elements() if "hx-get" in e.attrs)
        ids["cursor"] = re.search(r"cursor=([^&#]+)", link.attrs["hx-get"]).group(1)
    url = action.url.format(**ids)
    if action.fired_by_page:
        element = trigger(page, action.method, url, label=action.label)
        target, swap = target_and_swap(page, element)
        data = form_data(element) if element.tag == "form" else {}
    else:
        target, swap, data = None, "none", {}
    data.update(action.data)
    if action.method == "post":
        response = browser.post(url, data, htmx=True)
    else:
        response = browser.get(url, htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == action.status, body

    answer = parse(body)
    assert not {i: n for i, n in duplicate_ids(answer).items() if i in SECTIONS}, body
    problems = apply(page, target, swap, body, response.headers)
    assert problems == []
    assert duplicate_ids(page) == {}
    for section in SECTIONS:
        assert sum(e.attrs.get("id") == section for e in page.elements()) == 1, section
    assert action.expect in text_of(page)
    if not action.fired_by_page:
        assert text_of(page.by_id("toast")), "a refusal nobody sees"


def test_pay_now_leaves_the_page_through_hx_redirect_with_nothing_to_swap(browser, world):
    response = browser.post(f"/billing/invoices/{world.open}/pay", htmx=True)
    assert response.headers["HX-Redirect"] and response.get_data() == b""
