"""Payment processors behind one Protocol (``gateway.PaymentGateway``): Stripe and the built-in sandbox.

It may import ``config``, ``db`` and ``models``; ``billing``, ``web``, the worker and the CLI import it. It
must not import ``billing`` (a processor knows nothing of invoices' rules) nor Flask; a processor's own
hosted pages, when it has any, are web code in a ``pages`` module.
"""
from __future__ import annotations

from ..config import Settings
from ..db import Database
from .gateway import PaymentGateway


def build_gateway(settings: Settings, database: Database) -> PaymentGateway:
    """Stripe when a secret key is configured, otherwise the built-in sandbox."""
    if settings.processor == "stripe":
        from .stripe_gateway import StripeGateway

        return StripeGateway(secret_key=settings.stripe_secret_key, api_base=settings.stripe_api_base)
    from .sandbox_gateway import SandboxGateway

    return SandboxGateway(database)
