"""The built-in sandbox processor: deterministic test cards, no network, no real money.

``gateway.SandboxGateway`` satisfies ``payments.gateway.PaymentGateway`` and ``SandboxControls`` and hands each
call to the module for that job: ``cards`` (customers, test numbers, saving a card and its 3-D Secure step),
``methods`` (saving PayPal and bank accounts: Stripe's test accounts and IBANs, micro-deposits), ``charges``, ``checkout`` (hosted checkout sessions), ``events`` (the queue the portal fetches instead of
webhooks), ``refunds`` and ``controls`` (what only a tester does). ``books`` keeps their state in the
``sandbox_*`` tables, stamped by the gateway's clock.

``pages`` is the sandbox's own blueprint (its checkout page, the test bank's 3-D Secure step and the test
PayPal approval page); it is the
only module here that imports Flask, and only the web layer's registration imports it, in sandbox mode.
Everything else may be imported by ``payments.build_gateway``, the performance tools and tests; services
reach the sandbox only through the ``PaymentGateway`` and ``SandboxControls`` Protocols.
"""
from __future__ import annotations

from .cards import TEST_CARDS
from .gateway import SandboxGateway

__all__ = ["SandboxGateway", "TEST_CARDS"]
