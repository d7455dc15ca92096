"""Configuration read from environment variables.

Every setting the portal reads is declared once here, with its default and the text the README's
configuration table repeats. Nothing else in the code reads ``os.environ``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from .bounds import INT_MAX, parse_int


class ConfigError(RuntimeError):
    """The environment does not describe a portal that may start."""


# The key signs session cookies; anything shorter than 256 bits is within reach of an offline search.
MIN_SECRET_KEY_BYTES = 32


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(name)
    return value if value not in (None, "") else default


def _flag(name: str, default: bool = False) -> bool:
    value = _env(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    """The portal's settings; build one with :func:`load_settings`."""

    database_url: str
    secret_key: str
    demo: bool = False
    instance_path: Path = field(default_factory=lambda: Path("instance"))
    stripe_secret_key: str | None = None
    stripe_publishable_key: str | None = None
    stripe_webhook_secret: str | None = None
    stripe_api_base: str | None = None
    stripe_js_url: str = "https://js.stripe.com/v3/"
    ratelimit_storage_url: str = "memory://"
    # Failed logins: one address guessing one account, one address guessing any account, and everyone together
    # guessing one account (high, so strangers cannot lock an owner out, yet a distributed guess is capped).
    login_limit_per_account_and_ip: str = "5 per 10 minutes"
    login_limit_per_ip: str = "20 per 10 minutes"
    login_limit_per_account: str = "100 per hour"
    # Wrong current passwords on the account settings forms, per user and address, and per user.
    password_check_limit_per_user_and_ip: str = "5 per 10 minutes"
    password_check_limit_per_user: str = "20 per hour"
    proxy_hops: int = 0
    base_url: str = "http://127.0.0.1:5000"
    # Secure cookies are only sent over HTTPS; demo mode serves plain HTTP on 127.0.0.1.
    secure_cookies: bool = True
    seller_name: str = "Example Software Ltd."
    seller_address: str = "1 Dock Road; Dublin 2, D02 X285; Ireland"
    seller_country: str = "IE"
    seller_vat_number: str = "IE6388047V"
    # Pay by bank transfer: offered on Open invoices of these plan intervals from this total (minor units).
    bank_transfer_min_cents: int = 10_000
    bank_transfer_intervals: tuple[str, ...] = ("year",)
    # Saving a bank account (ACH, SEPA) is offered while the subscription's plan has one of these intervals.
    bank_account_intervals: tuple[str, ...] = ("year",)
    # What a customer paying by bank transfer is told: (label, value) pairs. The defaults are a demo's,
    # obviously not a real account, so nobody sends money to them.
    seller_bank_details: tuple[tuple[str, str], ...] = (
        ("Account holder", "Example Software Ltd."), ("IBAN", "IE00 DEMO 0000 0000 0000 00 (demo, not a real account)"),
        ("BIC", "DEMOIE2D"), ("Bank", "Demo Bank (not a real bank)"))
    # Who sells invoiced and wire-transfer plans, named where bank transfer is not offered.
    sales_contact: str = "sales@example.com"
    tax_rates_path: str | None = None
    vies_url: str | None = None
    vies_timeout: float = 3.0
    # Days after a failed renewal charge on which to retry: plain data here, the policy is built where it is used.
    retry_schedule: tuple[int, ...] = (3, 7)
    # The largest amount a staff form accepts, in minor units: 1,000,000.00 (see ENVIRONMENT).
    max_amount_cents: int = 100_000_000
    smtp_url: str | None = None
    mail_from: str = "Billing <billing@example.com>"
    # The product in front of the portal: its name for "Back to {product}", and the only origins a portal
    # session may send its user back to (anything else is refused, so the portal is never an open redirect).
    product_name: str = "the product"
    allowed_return_origins: tuple[str, ...] = ()
    portal_session_ttl: int = 300  # seconds a portal-session URL stays usable
    sign_in_link_ttl: int = 900  # seconds an e-mailed sign-in link stays usable
    webhook_timeout: float = 10.0  # seconds to wait for the product's webhook receiver
    testing: bool = False

    @property
    def processor(self) -> str:
        """``stripe`` when a Stripe secret key is configured, otherwise the built-in ``sandbox``."""
        return "stripe" if self.stripe_secret_key else "sandbox"

    @property
    def test_mode(self) -> bool:
        """True when no real money can move: the sandbox, or Stripe with a test key."""
        return self.processor == "sandbox" or (self.stripe_secret_key or "").startswith(("sk_test_", "rk_test_"))


# name, attribute, description (for the README table; see tests/unit/test_config.py)
ENVIRONMENT = [
    ("PORTAL_DATABASE_URL", "database_url", "SQLAlchemy URL of the database. Default: SQLite file `instance/portal.db`."),
    ("PORTAL_SECRET_KEY", "secret_key", "Signs sessions and CSRF tokens. Required outside demo mode."),
    ("PORTAL_INSTANCE_PATH", "instance_path", "Folder for the SQLite file, demo e-mails and caches. Default `instance/`."),
    ("PORTAL_BASE_URL", "base_url", "Public URL of the portal, used in e-mails and processor return URLs."),
    ("PORTAL_RATELIMIT_STORAGE_URL", "ratelimit_storage_url", "Where login rate limits are counted: `memory://` (one process) or `redis://host:6379` (several)."),
    ("PORTAL_PROXY_HOPS", "proxy_hops", "How many reverse proxies are in front of the portal; their `X-Forwarded-For` and `X-Forwarded-Proto` are trusted. Default `0`."),
    ("PORTAL_LOGIN_LIMIT_PER_ACCOUNT_AND_IP", "login_limit_per_account_and_ip", "Failed logins allowed for one e-mail address from one client address. Default `5 per 10 minutes`."),
    ("PORTAL_LOGIN_LIMIT_PER_IP", "login_limit_per_ip", "Failed logins allowed per client address, whatever the e-mail. Default `20 per 10 minutes`."),
    ("PORTAL_LOGIN_LIMIT_PER_ACCOUNT", "login_limit_per_account", "Failed logins allowed per e-mail address from all client addresses together. Default `100 per hour`."),
    ("PORTAL_PASSWORD_CHECK_LIMIT_PER_USER_AND_IP", "password_check_limit_per_user_and_ip", "Wrong current passwords allowed on the account settings forms per user and client address. Default `5 per 10 minutes`."),
    ("PORTAL_PASSWORD_CHECK_LIMIT_PER_USER", "password_check_limit_per_user", "Wrong current passwords allowed on the account settings forms per user. Default `20 per hour`."),
    ("PORTAL_SECURE_COOKIES", "secure_cookies", "Mark the session cookie `Secure` (HTTPS only). Default on, off in demo mode."),
    ("PORTAL_SELLER_NAME", "seller_name", "Your company's name, as printed on invoices."),
    ("PORTAL_SELLER_ADDRESS", "seller_address", "Your company's address on invoices; separate lines with `;`."),
    ("PORTAL_SELLER_COUNTRY", "seller_country", "Your company's country (ISO code); decides domestic VAT and reverse charge. Default `IE`."),
    ("PORTAL_SELLER_VAT_NUMBER", "seller_vat_number", "Your company's VAT number, printed on invoices and reverse-charge notes."),
    ("PORTAL_BANK_TRANSFER_MIN_CENTS", "bank_transfer_min_cents", "The smallest invoice total, in minor units, that may be paid by bank transfer. Default `10000` ($100.00)."),
    ("PORTAL_BANK_TRANSFER_INTERVALS", "bank_transfer_intervals", "Comma-separated plan intervals whose invoices may be paid by bank transfer. Default `year`."),
    ("PORTAL_BANK_ACCOUNT_INTERVALS", "bank_account_intervals", "Comma-separated plan intervals on which a customer may save a bank account (ACH or SEPA debit) as a payment method. Default `year`."),
    ("PORTAL_SELLER_BANK_DETAILS", "seller_bank_details", "The bank details shown to a customer paying by bank transfer, as `Label: value` pairs separated by `;`. The default is a demo's, clearly not a real account."),
    ("PORTAL_SALES_CONTACT", "sales_contact", "Who to contact for wire transfers or invoicing where bank transfer is not offered. Default `sales@example.com`."),
    ("PORTAL_TAX_RATES_PATH", "tax_rates_path", "A JSON file of tax rates that replaces the built-in table (same shape as `portal/data/tax_rates.json`)."),
    ("PORTAL_VIES_URL", "vies_url", "Switches on the online VAT-number check against the EU's VIES REST API at this base URL. Off by default."),
    ("PORTAL_VIES_TIMEOUT", "vies_timeout", "Seconds to wait for VIES before leaving a VAT number pending. Default `3`."),
    ("PORTAL_RETRY_SCHEDULE", "retry_schedule", "Days after a failed renewal charge on which to retry automatically; after the last, the subscription is suspended. Default `3,7`."),
    ("PORTAL_MAX_AMOUNT_CENTS", "max_amount_cents", "The largest amount, in minor units (cents), a staff refund or credit may be typed in. Default `100000000` ($1,000,000.00): far above any real invoice, so a slip of the keyboard is refused instead of becoming a credit that wipes out every later invoice; at most 2147483647, what the database's amount columns hold."),
    ("PORTAL_SMTP_URL", "smtp_url", "Where the worker sends e-mail: `smtp://user:password@host:587?starttls=1` or `smtps://host:465`. Unset: e-mails are written as `.eml` files under the instance folder."),
    ("PORTAL_MAIL_FROM", "mail_from", "The From address of e-mails. Default `Billing <billing@example.com>`."),
    ("PORTAL_PRODUCT_NAME", "product_name", "The product in front of the portal, as in \"← Back to {name}\". Default `the product`."),
    ("PORTAL_ALLOWED_RETURN_ORIGINS", "allowed_return_origins", "Comma-separated origins (`https://app.example.com`) a portal session's `return_url` may be on. Default: none, so portal sessions need it set (the demo: `http://127.0.0.1:8000` and `http://localhost:8000`)."),
    ("PORTAL_PORTAL_SESSION_TTL", "portal_session_ttl", "Seconds a portal-session URL can be used (once). Default `300`."),
    ("PORTAL_SIGN_IN_LINK_TTL", "sign_in_link_ttl", "Seconds an e-mailed sign-in link can be used (once). Default `900`."),
    ("PORTAL_WEBHOOK_TIMEOUT", "webhook_timeout", "Seconds the worker waits for the product's webhook receiver before retrying later. Default `10`."),
    ("STRIPE_SECRET_KEY", "stripe_secret_key", "Stripe secret key. When unset the built-in sandbox processor is used."),
    ("STRIPE_PUBLISHABLE_KEY", "stripe_publishable_key", "Stripe publishable key for Stripe.js. Required with `STRIPE_SECRET_KEY`."),
    ("STRIPE_WEBHOOK_SECRET", "stripe_webhook_secret", "Signing secret of the Stripe webhook endpoint."),
    ("STRIPE_API_BASE", "stripe_api_base", "Base URL of the Stripe API (tests point it at localstripe). Default: Stripe's."),
    ("STRIPE_JS_URL", "stripe_js_url", "Where the browser loads Stripe.js from. Default `https://js.stripe.com/v3/`."),
]


def _max_amount(value) -> int:
    """A whole number of minor units the database's Integer amount columns can hold."""
    amount = value if type(value) is int else parse_int(str(value).strip())
    if amount is None or not 1 <= amount <= INT_MAX:
        raise ConfigError(f"PORTAL_MAX_AMOUNT_CENTS must be a whole number of cents from 1 to {INT_MAX}, "
                          f"not {value!r}.")
    return amount


def load_settings(*, demo: bool = False, overrides: dict | None = None) -> Settings:
    """Read the environment; refuse to start when it is not safe to.

    Outside demo mode a missing ``PORTAL_SECRET_KEY`` is fatal: a guessable key would let anyone forge a
    session. Stripe mode needs both keys, or the add-card page could not load Stripe.js.
    """
    overrides = dict(overrides or {})
    instance_path = Path(overrides.pop("instance_path", None) or _env("PORTAL_INSTANCE_PATH", "instance")).resolve()
    values: dict = {
        "demo": demo,
        "instance_path": instance_path,
        "database_url": _env("PORTAL_DATABASE_URL", f"sqlite:///{instance_path / 'portal.db'}"),
        "secret_key": _env("PORTAL_SECRET_KEY"),
        "base_url": _env("PORTAL_BASE_URL", "http://127.0.0.1:5000"),
        "ratelimit_storage_url": _env("PORTAL_RATELIMIT_STORAGE_URL", "memory://"),
        "login_limit_per_account_and_ip": _env("PORTAL_LOGIN_LIMIT_PER_ACCOUNT_AND_IP", "5 per 10 minutes"),
        "login_limit_per_ip": _env("PORTAL_LOGIN_LIMIT_PER_IP", "20 per 10 minutes"),
        "login_limit_per_account": _env("PORTAL_LOGIN_LIMIT_PER_ACCOUNT", "100 per hour"),
        "password_check_limit_per_user_and_ip": _env("PORTAL_PASSWORD_CHECK_LIMIT_PER_USER_AND_IP", "5 per 10 minutes"),
        "password_check_limit_per_user": _env("PORTAL_PASSWORD_CHECK_LIMIT_PER_USER", "20 per hour"),
        "proxy_hops": _env("PORTAL_PROXY_HOPS", "0"),
        "secure_cookies": _flag("PORTAL_SECURE_COOKIES", default=not demo),
        "seller_name": _env("PORTAL_SELLER_NAME", "Example Software Ltd."),
        "seller_address": _env("PORTAL_SELLER_ADDRESS", "1 Dock Road; Dublin 2, D02 X285; Ireland"),
        "seller_country": (_env("PORTAL_SELLER_COUNTRY", "IE") or "IE").upper(),
        "seller_vat_number": _env("PORTAL_SELLER_VAT_NUMBER", "IE6388047V"),
        "tax_rates_path": _env("PORTAL_TAX_RATES_PATH"),
        "bank_transfer_min_cents": _env("PORTAL_BANK_TRANSFER_MIN_CENTS", "10000"),
        "bank_transfer_intervals": _env("PORTAL_BANK_TRANSFER_INTERVALS", "year"),
        "bank_account_intervals": _env("PORTAL_BANK_ACCOUNT_INTERVALS", "year"),
        "seller_bank_details": _env("PORTAL_SELLER_BANK_DETAILS") or Settings.seller_bank_details,
        "sales_contact": _env("PORTAL_SALES_CONTACT", "sales@example.com"),
        "vies_url": _env("PORTAL_VIES_URL"),
        "vies_timeout": float(_env("PORTAL_VIES_TIMEOUT", "3") or 3),
        "retry_schedule": _env("PORTAL_RETRY_SCHEDULE", "3,7"),
        "max_amount_cents": _env("PORTAL_MAX_AMOUNT_CENTS", "100000000"),
        "smtp_url": _env("PORTAL_SMTP_URL"),
        "mail_from": _env("PORTAL_MAIL_FROM", "Billing <billing@example.com>"),
        "product_name": _env("PORTAL_PRODUCT_NAME", "the product"),
        # The demo accepts a product on port 8000 of this machine, so the README's hand-off runs as written.
        "allowed_return_origins": _env("PORTAL_ALLOWED_RETURN_ORIGINS",
                                       "http://127.0.0.1:8000,http://localhost:8000" if demo else ""),
        "portal_session_ttl": _env("PORTAL_PORTAL_SESSION_TTL", "300"),
        "sign_in_link_ttl": _env("PORTAL_SIGN_IN_LINK_TTL", "900"),
        "webhook_timeout": float(_env("PORTAL_WEBHOOK_TIMEOUT", "10") or 10),
        "stripe_secret_key": _env("STRIPE_SECRET_KEY"),
        "stripe_publishable_key": _env("STRIPE_PUBLISHABLE_KEY"),
        "stripe_webhook_secret": _env("STRIPE_WEBHOOK_SECRET"),
        "stripe_api_base": _env("STRIPE_API_BASE"),
        "stripe_js_url": _env("STRIPE_JS_URL", "https://js.stripe.com/v3/"),
    }
    key_from_environment = "secret_key" not in overrides
    values.update(overrides)
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown settings: {', '.join(sorted(unknown))}")
    if not values["secret_key"]:
        if not demo:
            raise ConfigError("PORTAL_SECRET_KEY is not set; the portal refuses to start without it "
                              "(only `portal demo` may run without one).")
        # Demo mode: a fresh random key each run is fine, sessions need not outlive the process.
        values["secret_key"] = os.urandom(32).hex()
    elif key_from_environment and len(values["secret_key"].encode()) < MIN_SECRET_KEY_BYTES:
        # A short key can be guessed offline from one signed cookie. Keys given in code (the tests') are exempt.
        raise ConfigError(f"PORTAL_SECRET_KEY is {len(values['secret_key'].encode())} bytes long; use at least "
                          f"{MIN_SECRET_KEY_BYTES} random bytes, e.g. the output of "
                          '`python3 -c "import secrets; print(secrets.token_hex(32))"`.')
    values["proxy_hops"] = _proxy_hops(values["proxy_hops"])
    values["retry_schedule"] = _retry_schedule(values["retry_schedule"])
    values["max_amount_cents"] = _max_amount(values["max_amount_cents"])
    values.update(_bank_transfer(values))
    values["bank_account_intervals"] = _intervals(values["bank_account_intervals"], "PORTAL_BANK_ACCOUNT_INTERVALS")
    values["allowed_return_origins"] = _origins(values["allowed_return_origins"])
    for name, variable in (("portal_session_ttl", "PORTAL_PORTAL_SESSION_TTL"),
                           ("sign_in_link_ttl", "PORTAL_SIGN_IN_LINK_TTL")):
        values[name] = _seconds(values[name], variable)
    if values["stripe_secret_key"] and not values["stripe_publishable_key"]:
        raise ConfigError("STRIPE_SECRET_KEY is set but STRIPE_PUBLISHABLE_KEY is not; Stripe.js needs it.")
    return Settings(**values)


def _bank_transfer(values: dict) -> dict:
    """The bank-transfer settings from the environment's text (or as given in code)."""
    minimum = values["bank_transfer_min_cents"]
    minimum = minimum if type(minimum) is int else parse_int(str(minimum).strip())
    if minimum is None or not 0 <= minimum <= INT_MAX:
        raise ConfigError(f"PORTAL_BANK_TRANSFER_MIN_CENTS must be a whole number of cents, not "
                          f"{values['bank_transfer_min_cents']!r}.")
    intervals = values["bank_transfer_intervals"]
    intervals = tuple(i.strip() for i in intervals.split(",") if i.strip()) if isinstance(intervals, str) \
        else tuple(intervals)
    if any(i not in ("month", "year") for i in intervals):
        raise ConfigError(f"PORTAL_BANK_TRANSFER_INTERVALS takes month and/or year, not {intervals!r}.")
    details = values["seller_bank_details"]
    if isinstance(details, str):
        pairs = [part.split(":", 1) for part in details.split(";") if part.strip()]
        if any(len(p) != 2 or not p[0].strip() or not p[1].strip() for p in pairs):
            raise ConfigError("PORTAL_SELLER_BANK_DETAILS takes `Label: value` pairs separated by `;`.")
        details = tuple((label.strip(), value.strip()) for label, value in pairs)
    return {"bank_transfer_min_cents": minimum, "bank_transfer_intervals": intervals,
            "seller_bank_details": tuple(tuple(p) for p in details)}


def _intervals(value, variable: str) -> tuple[str, ...]:
    """Plan intervals from a comma-separated string (or a tuple given in code); only month and year exist."""
    intervals = tuple(i.strip() for i in value.split(",") if i.strip()) if isinstance(value, str) else tuple(value)
    if any(i not in ("month", "year") for i in intervals):
        raise ConfigError(f"{variable} takes month and/or year, not {intervals!r}.")
    return intervals


def _origins(value) -> tuple[str, ...]:
    """``scheme://host[:port]`` origins, lower-cased, from a comma-separated string or a tuple given in code."""
    parts = value.split(",") if isinstance(value, str) else list(value)
    origins = []
    for part in (p.strip() for p in parts):
        if not part:
            continue
        parsed = urlsplit(part)
        if parsed.scheme not in ("http", "https") or not parsed.hostname or parsed.path not in ("", "/") \
                or parsed.query or parsed.fragment or parsed.username:
            raise ConfigError(f"PORTAL_ALLOWED_RETURN_ORIGINS takes origins such as https://app.example.com, "
                              f"not {part!r}.")
        origins.append(f"{parsed.scheme}://{parsed.netloc.lower()}")
    return tuple(origins)


def _seconds(value, variable: str) -> int:
    seconds = value if type(value) is int else parse_int(str(value).strip())
    if seconds is None or not 1 <= seconds <= 86_400:
        raise ConfigError(f"{variable} must be a whole number of seconds from 1 to 86400, not {value!r}.")
    return seconds


def _retry_schedule(value) -> tuple[int, ...]:
    """Increasing positive days, from ``3,7`` (the environment) or a tuple (settings given in code)."""
    if isinstance(value, str):
        try:
            days = tuple(int(part) for part in value.replace(" ", "").split(",") if part)
        except ValueError as exc:
            raise ConfigError(f"PORTAL_RETRY_SCHEDULE must be whole days separated by commas, not {value!r}") from exc
    else:
        days = tuple(value)
    if not days:
        return Settings.retry_schedule
    if any(type(d) is not int or d <= 0 for d in days) or list(days) != sorted(set(days)):
        raise ConfigError(f"PORTAL_RETRY_SCHEDULE must be increasing positive days, like 3,7, not {value!r}")
    return days


def _proxy_hops(value) -> int:
    try:
        hops = int(str(value).strip())
    except ValueError:
        hops = -1
    if hops < 0:
        raise ConfigError(f"PORTAL_PROXY_HOPS must be a whole number, 0 or more (got {value!r}): the number of "
                          "reverse proxies in front of the portal.")
    return hops
