"""Configuration: what the portal refuses to start without, and which processor it picks."""
from __future__ import annotations

from pathlib import Path

import pytest

from portal.config import ENVIRONMENT, ConfigError, load_settings

GOOD_KEY = "k" * 32


@pytest.fixture(autouse=True)
def clean_env(monkeypatch):
    for name, _, _ in ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)


def test_outside_demo_mode_the_portal_refuses_to_start_without_a_secret_key():
    with pytest.raises(ConfigError, match="PORTAL_SECRET_KEY"):
        load_settings()


def test_demo_mode_makes_up_a_random_secret_key():
    assert len(load_settings(demo=True).secret_key) == 64
    assert load_settings(demo=True).secret_key != load_settings(demo=True).secret_key


def test_without_a_stripe_key_the_sandbox_processor_and_test_mode_are_used(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", GOOD_KEY)
    settings = load_settings()
    assert settings.processor == "sandbox" and settings.test_mode


def test_a_stripe_key_selects_stripe_and_needs_the_publishable_key(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", GOOD_KEY)
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_live_abc")
    with pytest.raises(ConfigError, match="STRIPE_PUBLISHABLE_KEY"):
        load_settings()
    monkeypatch.setenv("STRIPE_PUBLISHABLE_KEY", "pk_live_abc")
    settings = load_settings()
    assert settings.processor == "stripe" and not settings.test_mode


def test_cookies_are_secure_outside_demo_mode_only(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", GOOD_KEY)
    assert load_settings().secure_cookies is True
    assert load_settings(demo=True).secure_cookies is False


def test_a_secret_key_shorter_than_32_bytes_is_refused_and_32_bytes_are_accepted(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 31)
    with pytest.raises(ConfigError, match="31 bytes long; use at least 32"):
        load_settings()
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 32)
    assert load_settings().secret_key == "k" * 32


def test_a_secret_key_given_in_code_is_not_held_to_the_length_rule():
    # Only the environment is an operator's choice; settings built in code (the tests') pick their own key.
    assert load_settings(overrides={"secret_key": "test-secret-key"}).secret_key == "test-secret-key"


def test_proxy_hops_default_to_none_and_must_be_a_whole_number(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", GOOD_KEY)
    assert load_settings().proxy_hops == 0
    monkeypatch.setenv("PORTAL_PROXY_HOPS", "2")
    assert load_settings().proxy_hops == 2
    for bad in ("-1", "one", "1.5"):
        monkeypatch.setenv("PORTAL_PROXY_HOPS", bad)
        with pytest.raises(ConfigError, match="PORTAL_PROXY_HOPS"):
            load_settings()


def test_the_wsgi_entry_point_refuses_to_start_without_a_secret_key(monkeypatch, capsys):
    from portal.cli import APP_LOAD_ERROR, app_from_environment

    with pytest.raises(SystemExit) as exit_:
        app_from_environment()
    # gunicorn's "app failed to load" status, so its master stops rather than starting the worker again.
    assert exit_.value.code == APP_LOAD_ERROR
    assert capsys.readouterr().err.strip().startswith("portal: PORTAL_SECRET_KEY is not set")


def test_every_environment_variable_is_documented_in_the_readme():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    for name, _, _ in ENVIRONMENT:
        assert f"`{name}`" in readme, f"{name} is missing from the README's configuration table"


def test_the_largest_amount_staff_may_type_is_a_million_by_default_and_can_be_changed(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 32)
    assert load_settings().max_amount_cents == 100_000_000
    monkeypatch.setenv("PORTAL_MAX_AMOUNT_CENTS", "500000")
    assert load_settings().max_amount_cents == 500_000


@pytest.mark.parametrize("value", ["2147483648", "99999999999999999999", "0", "-5", "1e6", "١٢", "a lot"])
def test_a_largest_amount_the_database_cannot_hold_or_that_is_not_a_number_refuses_to_start(monkeypatch, value):
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("PORTAL_MAX_AMOUNT_CENTS", value)
    with pytest.raises(ConfigError, match="PORTAL_MAX_AMOUNT_CENTS"):
        load_settings()


def test_a_largest_amount_given_in_code_is_held_to_the_same_range(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 32)
    with pytest.raises(ConfigError, match="PORTAL_MAX_AMOUNT_CENTS"):
        load_settings(overrides={"max_amount_cents": 2**31})


def test_the_retry_schedule_is_read_as_days_and_a_custom_one_is_kept(monkeypatch):
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 32)
    assert load_settings().retry_schedule == (3, 7)
    monkeypatch.setenv("PORTAL_RETRY_SCHEDULE", "1, 2,4")
    assert load_settings().retry_schedule == (1, 2, 4)


@pytest.mark.parametrize("text", ["3,x", "7,3", "0,3", "3,3"])
def test_a_malformed_retry_schedule_refuses_to_start(monkeypatch, text):
    monkeypatch.setenv("PORTAL_SECRET_KEY", "k" * 32)
    monkeypatch.setenv("PORTAL_RETRY_SCHEDULE", text)
    with pytest.raises(ConfigError, match="PORTAL_RETRY_SCHEDULE"):
        load_settings()
