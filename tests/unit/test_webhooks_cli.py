"""``portal webhooks create|list|delete``: the secret printed once, bad input refused with the reason."""
from __future__ import annotations

import re

from click.testing import CliRunner
from sqlalchemy import select

from portal import cli
from portal.models import WebhookEndpoint


def run(*args):
    return CliRunner().invoke(cli.main, ["webhooks", *args])


def test_create_prints_the_secret_once_list_shows_the_endpoint_and_delete_removes_it(database_url, session,
                                                                                    monkeypatch):
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTAL_SECRET_KEY", "hooks-test-" + "k" * 32)

    made = run("create", "--url", "https://product.example/hooks", "--events", "invoice.paid,refund.created")
    assert made.exit_code == 0, made.output
    secret = re.search(r"whsec_\S+", made.output).group(0)
    assert session.scalar(select(WebhookEndpoint.secret)) == secret
    endpoint_id = session.scalar(select(WebhookEndpoint.id))

    listed = run("list")
    assert listed.exit_code == 0 and "https://product.example/hooks" in listed.output
    assert "invoice.paid,refund.created" in listed.output and secret not in listed.output

    assert run("delete", str(endpoint_id)).exit_code == 0
    assert "product.example" not in run("list").output
    gone = run("delete", str(endpoint_id))
    assert gone.exit_code != 0 and "No such webhook endpoint" in gone.output


def test_create_refuses_a_url_that_is_not_http_and_an_unknown_event(database_url, session, monkeypatch):
    monkeypatch.setenv("PORTAL_DATABASE_URL", database_url)
    monkeypatch.setenv("PORTAL_SECRET_KEY", "hooks-test-" + "k" * 32)
    refused = run("create", "--url", "file:///etc/passwd", "--events", "invoice.eaten")
    assert refused.exit_code != 0
    assert "url: Use an http:// or https:// URL." in refused.output and "invoice.eaten" in refused.output
    assert session.scalar(select(WebhookEndpoint.id)) is None
