"""The command line side of the API: ``portal api-keys create|list|revoke`` and ``portal plans create|list``,
and the ready key ``portal demo`` prints."""
from __future__ import annotations

import re
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from portal import cli
from portal.auth import api_keys
from portal.demo.seed import demo_api_key, seed
from portal.models import ApiKey, Plan, utcnow


@pytest.fixture
def run(monkeypatch, database_url, tmp_path):
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("PORTAL_SECRET_KEY", raising=False)

    def invoke(*args):
        return CliRunner().invoke(cli.main, list(args))
    return invoke


def test_a_key_is_printed_once_listed_by_its_prefix_and_revoked_by_id(run, session):
    created = run("api-keys", "create", "--name", "production backend")
    assert created.exit_code == 0, created.output
    [key] = re.findall(r"portal_sk_[A-Za-z0-9_-]{40,}", created.output)
    assert api_keys.authenticate(session, f"Bearer {key}", utcnow()) is not None
    listed = run("api-keys", "list")
    assert "production backend" in listed.output and key[:16] in listed.output and key not in listed.output
    row = session.scalar(select(ApiKey))
    assert run("api-keys", "revoke", str(row.id)).exit_code == 0
    session.expire_all()
    assert api_keys.authenticate(session, f"Bearer {key}", utcnow()) is None
    assert "revoked" in run("api-keys", "list").output
    missing = run("api-keys", "revoke", "999")
    assert missing.exit_code != 0 and "no API key 999" in missing.output


def test_a_key_needs_a_name(run, session):
    refused = run("api-keys", "create", "--name", "   ")
    assert refused.exit_code != 0 and "name" in refused.output
    assert session.scalar(select(ApiKey)) is None


def test_plans_are_created_and_listed_and_bad_ones_refused_with_the_option_named(run, session):
    made = run("plans", "create", "--code", "team-annual", "--name", "Team", "--interval", "year", "--price", "24000",
               "--currency", "EUR", "--sales-only")
    assert made.exit_code == 0, made.output
    plan = session.scalar(select(Plan))
    assert (plan.code, plan.price_cents, plan.currency, plan.interval, plan.self_serve) == \
        ("team-annual", 24000, "EUR", "year", False)
    assert "team-annual" in run("plans", "list").output and "€240.00/year" in run("plans", "list").output
    again = run("plans", "create", "--code", "team-annual", "--name", "Team", "--interval", "year", "--price", "1")
    assert again.exit_code != 0 and "exists already" in again.output
    bad = run("plans", "create", "--code", "Team Plan", "--name", "Team", "--interval", "month", "--price", "1",
              "--currency", "euro")
    assert bad.exit_code != 0 and "--code" in bad.output and "--currency" in bad.output


def test_the_demo_prints_a_key_that_reads_its_customers_invoices_and_retires_the_last_one(app, client, session,
                                                                                         gateway, settings, database):
    seed(session, gateway, today=date(2026, 12, 2), settings=settings, database=database)
    first = demo_api_key(session, now=utcnow())
    second = demo_api_key(session, now=utcnow())
    answer = client.get("/api/v1/accounts/acme/invoices", headers={"Authorization": f"Bearer {second}"})
    assert answer.status_code == 200 and len(answer.get_json()["data"]) >= 14  # its months of history
    assert client.get("/api/v1/plans", headers={"Authorization": f"Bearer {first}"}).status_code == 401
