"""Payment processors behind one Protocol (``gateway.PaymentGateway``)."""
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
