"""What a request reads from the database: /healthz nothing at all, an HTMX answer only what the sections it
swaps show. Counted with SQLAlchemy's ``before_cursor_execute`` (statements, never times)."""
from __future__ import annotations

import pytest

from portal.auth import sessions

from ..helpers import add_card, make_customer, make_invoice, make_subscription, statements
from .htmx_swap import apply, parse, target_and_swap, trigger

US = {"address_line1": "1 Main St", "city": "Boston", "postal_code": "02101", "region": "MA"}


@pytest.fixture
def customer(session, browser, gateway):
    account, _ = make_customer(session, **US)
    make_subscription(session, account)
    add_card(session, gateway, account, default=True)
    add_card(session, gateway, account, number="5555555555554444")
    for _ in range(3):
        make_invoice(session, account, status="paid")
    browser.login()
    return account


def test_healthz_with_a_logged_in_cookie_loads_no_session_and_no_user(database, browser, customer, monkeypatch):
    looked_up = []
    real = sessions.load_session
    monkeypatch.setattr(sessions, "load_session", lambda *a, **k: looked_up.append(a) or real(*a, **k))
    assert browser.get("/billing").status_code == 200 and looked_up  # the cookie is a live login
    looked_up.clear()
    with statements(database) as log:
        response = browser.get("/healthz")
    assert response.status_code == 200 and response.get_data() == b"ok\n"
    assert log == [] and looked_up == []
    assert "Set-Cookie" not in response.headers  # nothing of the session was read, so nothing is written back


def test_the_htmx_set_default_answer_reads_no_invoices(database, browser, session, customer):
    from portal.models import PaymentMethod

    other = session.query(PaymentMethod).filter_by(account_id=customer.id, is_default=False).one()
    with statements(database) as log:
        response = browser.post(f"/billing/cards/{other.id}/default", htmx=True)
    body = response.get_data(as_text=True)
    assert response.status_code == 200 and "Mastercard •••• 4444 is now your default card." in body
    assert f'id="card-{other.id}"' in body and 'id="charged-to"' in body
    assert log.on("invoices") == [] and log.on("refunds") == [] and log.on("credit_entries") == []


def test_show_more_invoices_reads_no_cards_and_no_subscription(database, browser, customer):
    with statements(database) as log:
        response = browser.get("/billing/invoices", htmx=True)
    assert response.status_code == 200 and "Download PDF" in response.get_data(as_text=True)
    assert log.on("invoices") and log.on("payment_methods") == [] and log.on("subscriptions") == []


def test_the_whole_page_still_reads_every_section(database, browser, customer):
    with statements(database) as log:
        response = browser.get("/billing")
    body = response.get_data(as_text=True)
    for section in ("subscription", "payment-details", "billing-address", "invoices", "credits"):
        assert f'id="{section}"' in body
    assert log.on("invoices") and log.on("payment_methods") and log.on("subscriptions")


# --- the same number of statements for 5 and for 2,000 invoices ----------------------------------------

def copy_invoices(session, account, count: int) -> None:
    """``count`` more paid invoices like the account's newest, written in bulk (issuing 2,000 through the
    services would take the test longer than the page; what is counted here is the page's reads)."""
    from sqlalchemy import insert, select

    from portal.models import Invoice

    model = session.scalars(select(Invoice).where(Invoice.account_id == account.id).order_by(Invoice.id.desc())).first()
    columns = [c.key for c in Invoice.__table__.columns if c.key != "id"]
    values = {key: getattr(model, key) for key in columns}
    rows = [{**values, "number": f"{model.number}-{n}", "issued_at": model.issued_at} for n in range(count)]
    # Without lines: PostgreSQL's guard refuses lines added to an issued invoice, and the list reads the
    # lines of a page in the same statement however many there are.
    session.execute(insert(Invoice), rows)
    session.commit()


@pytest.fixture
def ten_cards(session, browser, gateway):
    """A customer with 10 saved cards (the first the default) and 5 invoices."""
    account, _ = make_customer(session, **US)
    make_subscription(session, account)
    numbers = ["4242424242424242", "5555555555554444", "4000056655665556", "2223003122003222",
               "5200828282828210", "5105105105105100", "378282246310005", "6011111111111117",
               "4012888888881881", "4000000760000002"]
    for n, number in enumerate(numbers):
        add_card(session, gateway, account, number=number, default=n == 0)
    for _ in range(5):
        make_invoice(session, account, status="paid")
    browser.login()
    return account


def test_the_page_reads_as_much_for_2000_invoices_as_for_5(database, browser, session, ten_cards):
    browser.get("/billing")  # the first request of a process fills its caches (templates, countries)
    with statements(database) as few:
        five = browser.get("/billing")
    copy_invoices(session, ten_cards, 1995)
    with statements(database) as many:
        thousands = browser.get("/billing")
    assert five.status_code == thousands.status_code == 200
    assert "Show more invoices" not in five.get_data(as_text=True)
    assert "Show more invoices" in thousands.get_data(as_text=True)  # the 2,000 are really there
    assert len(few) == len(many) <= 6, many


def test_set_default_reads_no_invoices_and_as_much_for_2000_as_for_5(database, browser, session, ten_cards):
    from portal.models import PaymentMethod

    cards = session.query(PaymentMethod).filter_by(account_id=ten_cards.id, is_default=False).limit(2).all()
    browser.post(f"/billing/cards/{cards[0].id}/default", htmx=True)
    with statements(database) as few:
        browser.post(f"/billing/cards/{cards[1].id}/default", htmx=True)
    copy_invoices(session, ten_cards, 1995)
    with statements(database) as many:
        response = browser.post(f"/billing/cards/{cards[0].id}/default", htmx=True)
    assert response.status_code == 200
    assert len(few) == len(many)
    assert many.on("invoices") == [] and many.on("refunds") == [] and many.on("credit_entries") == []


def test_the_htmx_set_default_answer_is_small_and_leaves_the_page_as_a_fresh_one(browser, session, ten_cards):
    """With 10 cards the answer carries the two rows that changed, not the 10: at most 4 KB. Applied the way
    htmx applies it, the page's cards (order, badges, menus) and "Charged to" are what a reload shows."""
    page = parse(browser.get("/billing").get_data(as_text=True))
    listed = [e.attrs["id"] for e in page.by_id("payment-details").elements() if e.tag == "li"]
    chosen = listed[4].removeprefix("card-")  # a card in the middle of the list
    url = f"/billing/cards/{chosen}/default"
    element = trigger(page, "post", url)
    target, swap = target_and_swap(page, element)
    response = browser.post(url, htmx=True)
    body = response.get_data()
    assert response.status_code == 200 and len(body) <= 4096, len(body)
    assert body.count(b'<li class="card') == 2
    assert apply(page, target, swap, body.decode(), response.headers) == []

    fresh = parse(browser.get("/billing").get_data(as_text=True))

    def shown(node, element_id):
        return " ".join(node.by_id(element_id).text().split())

    def rows(node):
        return [(e.attrs["id"], " ".join(e.text().split()), e.attrs.get("class"))
                for e in node.by_id("payment-details").elements() if e.tag == "li"]

    assert rows(page) == rows(fresh)
    assert rows(page)[0][0] == f"card-{chosen}" and "Default" in rows(page)[0][1]
    old_default = next(row for row in rows(page) if row[0] == listed[0])
    assert "Default" not in old_default[1] and "Save as default card" in old_default[1]
    assert shown(page, "charged-to") == shown(fresh, "charged-to")
    assert "is now your default card." in shown(page, "toast")
