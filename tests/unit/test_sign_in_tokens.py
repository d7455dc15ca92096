"""Portal sessions and e-mailed sign-in links: who they sign in, for how long, once, and what they refuse."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
from sqlalchemy import select

from portal.auth import sign_in_tokens
from portal.errors import InvalidInput, NotFound
from portal.models import AuditEvent, LoginSession, OutboxMessage, SignInToken, User

from ..helpers import make_customer, make_staff, run_concurrently

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.product_in_front

RETURN = "https://app.example.com/settings"


@pytest.fixture
def account(session):
    account, _ = make_customer(session, external_id="acct_42")
    return account


def create(session, settings, **overrides):
    values = dict(account_external_id="acct_42", email="ada@example.com", return_url=RETURN, flow="billing",
                  api_key_id=None, settings=settings, now=NOW)
    values.update(overrides)
    return sign_in_tokens.create_portal_session(session, **values)


def token_of(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def refusals(session) -> list[str]:
    session.expire_all()
    return [e.details["reason"] for e in session.scalars(
        select(AuditEvent).where(AuditEvent.action == "auth.sign_in_refused").order_by(AuditEvent.id))]


def test_a_portal_session_is_a_url_on_the_portal_that_expires_after_the_configured_time(session, settings, account):
    url, expires_at = create(session, settings)
    assert url.startswith(settings.base_url.rstrip("/") + "/portal/session/")
    assert expires_at == NOW + timedelta(seconds=settings.portal_session_ttl)


def test_only_the_tokens_hash_is_stored(session, settings, account):
    url, _ = create(session, settings)
    token = token_of(url)
    rows = session.scalars(select(SignInToken)).all()
    assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert token not in repr([(r.token_hash, r.return_url, r.flow) for r in rows])


def test_an_unknown_account_is_not_found(session, settings, account):
    with pytest.raises(NotFound):
        create(session, settings, account_external_id="acct_nope")


def test_a_new_email_becomes_a_user_of_that_account_without_a_password(session, settings, account):
    create(session, settings, email="New.Person@Example.com")
    user = session.scalar(select(User).where(User.email == "new.person@example.com"))
    assert user.account_id == account.id and user.password_hash == ""


def test_an_email_of_another_accounts_user_is_refused_on_the_email_field(session, settings, account):
    make_customer(session, email="mallory@example.com", billing_email="m@example.com")
    with pytest.raises(InvalidInput) as refused:
        create(session, settings, email="mallory@example.com")
    assert set(refused.value.errors) == {"email"}
    assert session.scalars(select(SignInToken)).all() == []


def test_a_staff_email_is_refused(session, settings, account):
    make_staff(session)
    with pytest.raises(InvalidInput) as refused:
        create(session, settings, email="sam@support.example")
    assert set(refused.value.errors) == {"email"}


@pytest.mark.parametrize("url", [
    "https://evil.example/settings",
    "https://app.example.com.evil.example/",
    "https://app.example.com@evil.example/",
    "http://app.example.com/settings",            # another scheme is another origin
    "https://app.example.com:8443/",
    "//evil.example/",
    "/billing",
    "javascript:alert(1)",
    "https://app.example.com\\@evil.example/",
    "",
])
def test_a_return_url_off_the_allowed_origins_is_refused_on_its_field(session, settings, account, url):
    with pytest.raises(InvalidInput) as refused:
        create(session, settings, return_url=url)
    assert set(refused.value.errors) == {"return_url"}
    assert session.scalars(select(SignInToken)).all() == []


def test_an_unknown_flow_is_refused_on_its_field(session, settings, account):
    with pytest.raises(InvalidInput) as refused:
        create(session, settings, flow="everything")
    assert set(refused.value.errors) == {"flow"}


def test_redeeming_signs_in_the_user_with_the_flow_and_return_url(session, settings, account):
    url, _ = create(session, settings, flow="payment_method")
    redemption = sign_in_tokens.redeem(session, token_of(url), now=NOW + timedelta(seconds=10))
    assert redemption.refused is None
    assert (redemption.user.email, redemption.flow, redemption.return_url) == ("ada@example.com", "payment_method",
                                                                               RETURN)


def test_a_token_works_once_and_the_second_use_is_refused_and_audited(session, settings, account):
    url, _ = create(session, settings)
    first, _ = sign_in_tokens.sign_in_with_token(session, token_of(url), now=NOW)
    second, new_session = sign_in_tokens.sign_in_with_token(session, token_of(url), now=NOW + timedelta(seconds=1))
    assert first.refused is None and second.refused == "used" and new_session is None
    assert refusals(session) == ["used"]


def test_an_expired_token_is_refused_and_audited(session, settings, account):
    url, expires_at = create(session, settings)
    assert sign_in_tokens.redeem(session, token_of(url), now=expires_at).refused == "expired"
    assert refusals(session) == ["expired"]
    # Not marked used: a later look at the row says it expired unused, which is what happened.
    session.expire_all()
    assert session.scalar(select(SignInToken)).used_at is None


def test_a_token_of_a_user_removed_from_the_account_is_refused(session, settings, account):
    url, _ = create(session, settings)
    user = session.scalar(select(User).where(User.email == "ada@example.com"))
    user.account_id = None
    session.commit()
    assert sign_in_tokens.redeem(session, token_of(url), now=NOW).refused == "user_removed"
    assert refusals(session) == ["user_removed"]


def test_a_token_of_a_user_who_became_staff_is_refused(session, settings, account):
    url, _ = create(session, settings)
    user = session.scalar(select(User).where(User.email == "ada@example.com"))
    user.account_id, user.role = None, "staff"
    session.commit()
    assert sign_in_tokens.redeem(session, token_of(url), now=NOW).refused == "staff"


def test_an_unknown_token_is_refused_without_writing_anything(session, settings, account):
    assert sign_in_tokens.redeem(session, "made-up", now=NOW).refused == "unknown"
    assert refusals(session) == []


def test_signing_in_opens_a_login_session_that_remembers_the_return_url(session, settings, account):
    url, _ = create(session, settings)
    redemption, token = sign_in_tokens.sign_in_with_token(session, token_of(url), ip="203.0.113.9", now=NOW)
    row = session.get(LoginSession, hashlib.sha256(token.encode()).hexdigest())
    assert row.return_url == RETURN and row.user_id == redemption.user.id and row.revoked_at is None


def test_two_concurrent_redemptions_of_one_token_let_exactly_one_in(database, session, settings, account):
    url, _ = create(session, settings)
    token = token_of(url)

    def attempt(_):
        with database.session() as own:
            return sign_in_tokens.sign_in_with_token(own, token, now=NOW)[0].refused

    outcomes = run_concurrently(attempt, 4)
    assert all(o.ok for o in outcomes), outcomes
    assert sorted(o.value or "" for o in outcomes) == ["", "used", "used", "used"]
    session.expire_all()
    assert session.query(LoginSession).count() == 1


def test_an_emailed_link_goes_through_the_outbox_to_the_users_address(session, settings, account):
    sign_in_tokens.email_sign_in_link(session, " ADA@example.com ", settings=settings, now=NOW)
    message = session.scalar(select(OutboxMessage))
    assert message.to_address == "ada@example.com" and message.kind == "sign_in_link"
    link = next(w for w in message.text_body.split() if "/portal/session/" in w)
    token = session.scalar(select(SignInToken))
    assert token.kind == "email_link" and token.expires_at == NOW + timedelta(seconds=settings.sign_in_link_ttl)
    assert sign_in_tokens.redeem(session, token_of(link), now=NOW + timedelta(minutes=14)).user.email == \
        "ada@example.com"


@pytest.mark.parametrize("email", ["nobody@example.com", "sam@support.example", ""])
def test_no_link_is_sent_to_an_unknown_address_or_to_staff(session, settings, account, email):
    make_staff(session)
    sign_in_tokens.email_sign_in_link(session, email, settings=settings, now=NOW)
    assert session.scalars(select(OutboxMessage)).all() == []
    assert session.scalars(select(SignInToken)).all() == []
