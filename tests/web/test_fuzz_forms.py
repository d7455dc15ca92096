"""Property-based fuzzing of every form the URL map can reach: no input makes a 5xx, and an input that is
refused changes nothing.

Nothing here is a hand-made list of forms. The mutating rules come from ``app.url_map``; each rule's form is
found by GETting every page and partial as each kind of user (customer, staff, someone logged out, staff
viewing an account as its customer) and parsing the ``<form method="post" action=...>`` elements they render,
so the path parameters are the real ids of the seeded world and the field names are the form's own. A rule
that no page renders a form for falls back to its view's form class in ``portal/web/forms.py``. A new
mutating route is fuzzed the day it is added, or the coverage test below says why not.
"""
from __future__ import annotations

import inspect
import re
import string
from dataclasses import dataclass, field, replace
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from werkzeug.exceptions import HTTPException

from portal import create_app
from portal.audit import Actor
from portal.billing.payment_methods import bank_accounts, cards
from portal.payments.gateway import BankAccountDetails
from portal.billing.collecting import checkout
from portal.billing.collecting.events import deliver_sandbox_events
from portal.config import load_settings
from portal.db import Database
from portal.extensions import limiter
from portal.models import Base, utcnow
from portal.web import forms as form_classes

from ..helpers import PASSWORD, POLICY, Browser, make_invoice
from .test_security_sweeps import MUTATING, World, fingerprint, is_api_route, rules, url_for_rule

# Mutating rules that are not forms, each for a stated reason.
NOT_FORMS = {
    "auth.logout",              # a bare button: no field to fuzz, and posting it ends the fuzzing user's session
    "webhooks.stripe_webhook",  # signed JSON from Stripe, not a form (tests/integration/test_checkout_stripe.py)
    # Bare buttons (a CSRF token, no field to fuzz), shown only while a cancel or a downgrade is pending, which
    # the past-due world never has: tests/web/test_manage_plan_*.py post them, refused and accepted.
    "plan.keep", "plan.cancel_change",
    # The console's undo forms (one note field), shown under the same condition; tests/web/test_staff_plan.py
    # posts them with and without their note.
    "staff_plan.keep", "staff_plan.cancel_change",
    # A bare button (a CSRF token, no field to fuzz), shown only on an Open annual invoice from the bank-transfer
    # minimum, which the fuzz world's monthly plans never have: tests/web/test_bank_transfer.py posts it,
    # accepted and refused (monthly, below the minimum, paid, without a CSRF token).
    "invoices.choose_bank_transfer",
}
# The sandbox processor's own records (setup intents, charges, checkout sessions). A refusal may change them as
# Stripe's records change at Stripe: a failed 3-D Secure check or a declined card is the processor's answer
# to a well-formed request. What must not change on a refusal is the portal's own data.
PROCESSOR_TABLES = frozenset(t.name for t in Base.metadata.sorted_tables if t.name.startswith("sandbox_"))
NUL_GUARD = "contained characters that can"  # the start of both of the NUL guard's refusals


def _mutating_endpoints() -> list[str]:
    """The mutating rules of a sandbox-mode app, read at collection time so each form is a test of its own."""
    app = create_app(load_settings(overrides={"database_url": "sqlite://", "secret_key": "collect-" * 5,
                                              "testing": True, "secure_cookies": False}),
                     database=Database("sqlite://"))
    # The API's JSON routes are not forms: Schemathesis fuzzes them from the OpenAPI document instead
    # (tests/integration/test_api_schemathesis.py).
    return sorted({rule.endpoint for rule in rules(app, methods=MUTATING, public=True) if not is_api_route(rule)})


ENDPOINTS = _mutating_endpoints()


# --- finding the forms ---------------------------------------------------------------------------------------

@dataclass
class Form:
    """One ``<form method="post">`` as a page renders it: where it posts and the values it offers."""
    action: str
    fields: dict[str, set[str]] = field(default_factory=dict)

    def offer(self, name: str, value: str | None) -> None:
        if name and name != "csrf_token":
            values = self.fields.setdefault(name, set())
            if value:
                values.add(value)


class FormParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[Form] = []
        self.current: Form | None = None
        self.select: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            if (attrs.get("method") or "get").lower() == "post":
                self.current = Form(action=attrs.get("action") or "")
                self.forms.append(self.current)
            return
        if self.current is None:
            return
        if tag == "input" and attrs.get("type") not in ("submit", "image", "reset"):
            value = attrs.get("value")
            if attrs.get("type") == "checkbox" and value is None:
                value = "on"
            self.current.offer(attrs.get("name"), value)
        elif tag in ("textarea", "button") and attrs.get("name"):
            self.current.offer(attrs["name"], attrs.get("value"))
        elif tag == "select":
            self.select = attrs.get("name")
            self.current.offer(self.select, None)
        elif tag == "option" and self.select:
            self.current.offer(self.select, attrs.get("value"))

    def handle_endtag(self, tag):
        if tag == "form":
            self.current = None
        elif tag == "select":
            self.select = None


@dataclass
class Target:
    """A form to fuzz: who posts it, where to, and its fields with the values its page offered."""
    persona: str
    url: str
    fields: dict[str, set[str]]


class Personas:
    """The kinds of user whose pages render forms, each a logged-in browser (or none) of the world's."""
    ORDER = ("customer", "staff", "anonymous", "impersonating")

    def __init__(self, app, world):
        self.app, self.world = app, world
        self.browsers: dict[str, Browser] = {}

    def browser(self, persona: str) -> Browser:
        if persona == "anonymous":
            # A new browser for every example: a login the fuzzer happened to get right must not carry over.
            browser = Browser(self.app.test_client())
            browser.get("/login")
            return browser
        if persona not in self.browsers:
            browser = Browser(self.app.test_client())
            browser.login("sam@support.example" if persona in ("staff", "impersonating") else "ada@example.com")
            self.browsers[persona] = browser
        browser = self.browsers[persona]
        if persona == "impersonating":
            self._impersonate(browser)
        return browser

    def _impersonate(self, browser: Browser) -> None:
        """Start viewing "mine" as its customer unless already doing so (the fuzzer may have ended it)."""
        account_id = self.world.mine.id
        if "End impersonation" in browser.get("/billing").get_data(as_text=True):
            return
        browser.get(f"/staff/accounts/{account_id}")
        started = browser.post(f"/staff/accounts/{account_id}/impersonate", {"reason": "Customer asked for help"})
        assert started.status_code == 303, started.get_data(as_text=True)
        browser.get("/billing")

    def restore(self, persona: str, response) -> None:
        """Undo what a successful example did to the user's own session, so the next example posts as the
        same user: staff who started viewing an account as its customer end it."""
        if persona == "staff" and response.status_code == 303 and response.headers["Location"].endswith("/billing"):
            browser = self.browsers["staff"]
            browser.get("/billing")
            assert browser.post("/staff/impersonation/end").status_code == 303


def _endpoint_of(app, action: str) -> str | None:
    adapter = app.url_map.bind("localhost")
    try:
        endpoint, _ = adapter.match(urlsplit(action).path, method="POST")
    except HTTPException:
        return None
    return endpoint


# Where each endpoint's form was met (persona, GET endpoint, HTMX), remembered from the first crawl of this run
# so that each form's test GETs one page instead of crawling them all again in its fresh world.
SOURCES: dict[str, tuple[str, str, bool]] = {}
FULL_CRAWLS = []  # one entry per finished crawl of every page: after one, an endpoint not in SOURCES has no page


def _page_forms(app, world, personas: Personas, persona: str, rule, htmx: bool):
    response = personas.browser(persona).get(url_for_rule(app, rule, world.args(rule, "mine")), htmx=htmx)
    if response.mimetype != "text/html":
        return []
    parser = FormParser()
    parser.feed(response.get_data(as_text=True))
    return [(endpoint, form) for form in parser.forms if (endpoint := _endpoint_of(app, form.action))]


def _add(found: dict[str, list[Target]], endpoint: str, persona: str, form: Form) -> None:
    targets = found.setdefault(endpoint, [])
    if not any(t.url == form.action and t.fields.keys() == form.fields.keys() for t in targets):
        targets.append(Target(persona, form.action, form.fields))


def discover(app, world, personas: Personas, *, wanted: str | None = None) -> dict[str, list[Target]]:
    """Every form that every GET route renders (page and HTMX partial) for each persona, by the endpoint it
    posts to. With ``wanted``, only that endpoint's forms, from the first page that renders them."""
    if wanted in SOURCES:
        persona, source, htmx = SOURCES[wanted]
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == source)
        found: dict[str, list[Target]] = {}
        for endpoint, form in _page_forms(app, world, personas, persona, rule, htmx):
            if endpoint == wanted:
                _add(found, endpoint, persona, form)
        if found:
            return found
    elif wanted and FULL_CRAWLS:
        return {}
    found = {}
    for persona in Personas.ORDER:
        for rule in rules(app, methods={"GET"}, public=True):
            if rule.endpoint == "static":
                continue
            for htmx in (False, True):
                for endpoint, form in _page_forms(app, world, personas, persona, rule, htmx):
                    # The first persona that meets a form is the one who posts it (staff see the customer's
                    # pages too while impersonating, where every form but "End impersonation" is refused).
                    if (wanted and endpoint != wanted) or (found.get(endpoint) and
                                                           found[endpoint][0].persona != persona):
                        continue
                    SOURCES.setdefault(endpoint, (persona, rule.endpoint, htmx))
                    _add(found, endpoint, persona, form)
            if wanted in found:
                return found  # enough for one form's test; the coverage test crawls everything
    if wanted is None:
        FULL_CRAWLS.append(len(found))
    return found


def form_class_fields(app, endpoint: str) -> dict[str, set[str]] | None:
    """The fields of the form class the view builds, for a rule that no page renders a form for."""
    source = inspect.getsource(app.view_functions[endpoint])
    for name in re.findall(r"\b(\w+Form)\(", source):
        cls = getattr(form_classes, name, None)
        if isinstance(cls, type) and issubclass(cls, form_classes.FlaskForm):
            with app.test_request_context():
                return {f.name: set() for f in cls(meta={"csrf": False})}
    return None


def fallback_target(app, world, endpoint: str) -> Target | None:
    rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
    fields = form_class_fields(app, endpoint)
    if fields is None:
        return None
    persona = "staff" if endpoint.startswith("staff") else "customer"
    return Target(persona, url_for_rule(app, rule, world.args(rule, "mine")), fields)


# --- the world the forms are fuzzed in -------------------------------------------------------------------------

def fuzz_world(app, session, gateway) -> World:
    """The past-due customer (every form of Billing details shows, Retry payment included) with a second card,
    plus an earlier invoice paid with Pay now, so the staff panel offers a refund next to void, retry and
    wire transfer."""
    world = World(app, session, gateway, state="past_due", send_notices=False)
    second = world.cards.save(session, gateway, world.mine, number="5555555555554444")  # a card to set as default
    # Card pages open for the second card: the default card's delete confirmation says why it can't be deleted
    # instead of rendering the form.
    world.objects["mine"]["card_id"] = second.id
    # A third card, the backup, so that "Remove backup" is on the page beside the second card's "Set as backup".
    third = world.cards.save(session, gateway, world.mine, number="378282246310005")
    third.is_backup = True
    session.commit()
    # Bank accounts offered on this monthly plan too, so the bank form renders; and a US bank account waiting
    # for its micro-deposits, so its Verify form does.
    settings = replace(app.extensions["portal.settings"], bank_account_intervals=("month", "year"))
    app.extensions["portal.settings"] = settings
    intent = bank_accounts.start_bank_setup(
        session, gateway, world.mine.id, intervals=settings.bank_account_intervals, mandate=None,
        save_as_default=False, idempotency_key="fuzz-ach",
        bank=BankAccountDetails(type="us_bank_account", holder_name="Ada", routing_number="110000000",
                                account_number="000123456789", verification_method="microdeposits"))
    assert cards.complete_card_setup(session, gateway, world.mine.id, intent.id, actor=Actor.system(),
                                     now=utcnow()).verification == "pending"
    earlier = make_invoice(session, world.mine, issued_at=utcnow() - timedelta(days=32))
    url = checkout.start_checkout(session, gateway, world.mine.id, earlier.id, success_url="http://x/s",
                                  cancel_url="http://x/c", now=utcnow())
    gateway.pay_checkout_session(re.search(r"cs_sbx_\w+", url).group(0), method="card", outcome="success")
    deliver_sandbox_events(app.extensions["portal.db"], gateway, now=utcnow(), policy=POLICY)
    session.expire_all()
    assert session.get(type(earlier), earlier.id).status == "paid"
    return world


@pytest.fixture
def world(app, session, gateway):
    return fuzz_world(app, session, gateway)


def test_every_mutating_rule_has_a_form_to_fuzz(app, world):
    """Coverage: every mutating rule is met as a form on some page (or has a form class), bar NOT_FORMS."""
    assert NOT_FORMS <= set(ENDPOINTS), "NOT_FORMS names a rule the URL map no longer has"
    found = discover(app, world, Personas(app, world))
    missing = [e for e in ENDPOINTS if e not in NOT_FORMS and e not in found and not fallback_target(app, world, e)]
    assert missing == [], f"no page renders a form for {missing} and its view has no form class: seed the " \
                          f"world so that one does, or add the rule to NOT_FORMS with the reason"
    assert set(found) - set(ENDPOINTS) == set()
    # The fallback is for forms a mode never renders (Stripe's SetupIntent form in sandbox mode), not a way out.
    assert len(found) >= len(ENDPOINTS) - len(NOT_FORMS) - 1


# --- the values ------------------------------------------------------------------------------------------------

# No NUL (\x00) in generated text: the app refuses any form holding one before its validation runs (that guard
# has its own test below), and Hypothesis likes NUL as the "simplest" character, so unfiltered text would
# spend most examples on that one refusal. Every other control character is in.
TEXT = st.characters(codec="utf-8", exclude_characters="\x00")
JUNK = st.one_of(
    st.just(""),
    st.text(alphabet=string.digits, min_size=1, max_size=12),
    st.text(alphabet=string.ascii_letters + string.punctuation + " ", max_size=30),
    st.text(alphabet=st.characters(categories=["Nd"]), min_size=1, max_size=8),  # "١٢", "１２", "߁"
    st.integers(min_value=2**31 - 1, max_value=10**40).map(str),                   # past the integer columns
    st.integers(max_value=-1).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
    st.text(alphabet=TEXT, max_size=40),
    st.text(alphabet=TEXT, min_size=300, max_size=3000),                          # very long
)
# Values that pass some validators, so that examples also get past the first check of each form.
PLAUSIBLE = ["4242 4242 4242 4242", "4000 0000 0000 0002", "12 / 30", "01/20", "123", "ada@example.com",
             "a@b.c", PASSWORD, "US", "MA", "DE", "01101", "DE136695976", "5", "5.00", "0.01", "2026-11-30",
             "Customer asked for help", "card", "credit", "success", "failure", "approve", "y"]
EXTRA_FIELD = "unexpected"  # a field no form has: a request may carry anything


def form_strategy(target: Target):
    names = sorted(target.fields) + [EXTRA_FIELD]
    return st.fixed_dictionaries({
        name: st.one_of(JUNK, st.sampled_from(sorted(target.fields.get(name, set())) + PLAUSIBLE))
        for name in names})


FUZZ = settings(max_examples=20, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


# --- the property ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("endpoint", [e for e in ENDPOINTS if e not in NOT_FORMS])
def test_no_form_input_causes_a_server_error_and_refused_input_changes_nothing(app, database, world, endpoint):
    personas = Personas(app, world)
    targets = discover(app, world, personas, wanted=endpoint).get(endpoint) or [fallback_target(app, world, endpoint)]
    assert targets[0] is not None, f"no form found for {endpoint} (see test_every_mutating_rule_has_a_form_to_fuzz)"
    answers = {"nul_guard": 0, "other": 0}

    @FUZZ
    @given(index=st.integers(0, len(targets) - 1), data=st.data(), htmx=st.booleans())
    @example(index=0, data=None, htmx=False)  # one NUL in every field: the guard's answer, counted below
    def check(index, data, htmx):
        target = targets[index]
        values = {name: "x\x00" for name in [*target.fields, EXTRA_FIELD]} if data is None else \
            data.draw(form_strategy(target), label="form")
        limiter.reset()  # each example meets the form's own checks, not the rate limit earlier examples used up
        browser = personas.browser(target.persona)
        before = fingerprint(database, leave_out=PROCESSOR_TABLES)
        response = browser.post(target.url, values, htmx=htmx)
        body = response.get_data(as_text=True)
        assert response.status_code < 500, f"{endpoint}: {values!r} caused {response.status_code}"
        # 402 is not a refusal of the input: the form was accepted and the processor declined the charge, which
        # is recorded (the failed attempt, the next retry), as it must be.
        refused = (response.status_code >= 400 and response.status_code != 402) or 'aria-invalid="true"' in body
        if refused:
            assert fingerprint(database, leave_out=PROCESSOR_TABLES) == before, \
                f"{endpoint}: refused {values!r} ({response.status_code}) but changed data"
        answers["nul_guard" if response.status_code == 400 and NUL_GUARD in body else "other"] += 1
        personas.restore(target.persona, response)

    check()
    total = sum(answers.values())
    assert answers["nul_guard"] >= 1, f"{endpoint}: the NUL example was not refused by the NUL guard: {answers}"
    # Most examples must reach the form's own validation: a NUL-heavy strategy would test one guard 20 times.
    assert answers["nul_guard"] / total < 0.10, f"{endpoint}: {answers}"


def test_a_nul_character_in_any_form_is_refused_plainly_and_changes_nothing(app, database, world):
    personas = Personas(app, world)
    browser = personas.browser("customer")
    before = fingerprint(database)
    for url in ("/login", "/billing/address", "/billing/cards"):
        response = browser.post(url, {"email": "a\x00@b.c", "name": "x\x00", "number": "4242\x00"})
        assert response.status_code == 400 and "characters that can" in response.get_data(as_text=True)
    assert fingerprint(database) == before
