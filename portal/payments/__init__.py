"""Payment processors behind one Protocol (``gateway.PaymentGateway``): Stripe (``stripe_gateway``) and the
built-in sandbox (the ``sandbox`` package).

It may import ``config``, ``db`` and ``models``; ``billing``, ``web``, the worker and the CLI import it. It
must not import ``billing`` (a processor knows nothing of invoices' rules) nor Flask; a processor's own
hosted pages, when it has any, are web code in a ``pages`` module.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..config import Settings
from ..db import Database
from ..models import utcnow
from .gateway import PaymentGateway


def build_gateway(settings: Settings, database: Database, *,
                  clock: Callable[[], datetime] = utcnow) -> PaymentGateway:
    """Stripe when a secret key is configured, otherwise the built-in sandbox. ``clock`` dates what the
    sandbox writes (a ``--now`` run passes its pretended moment); Stripe keeps its own time."""
    if settings.processor == "stripe":
        from .stripe_gateway import StripeGateway

        return StripeGateway(secret_key=settings.stripe_secret_key, api_base=settings.stripe_api_base)
    from .sandbox import SandboxGateway

    return SandboxGateway(database, clock=clock)
