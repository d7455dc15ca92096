"""The billing services, one package per capability, so that a URL leads to the code that does the work in
two hops (the route in ``portal/web/``, then the module named here):

- ``customer``: who is billed — billing address rules, billing e-mail and address changes, VAT numbers.
- ``invoicing``: what is owed — building and issuing invoices, their numbers, tax, billing periods and
  the next charge.
- ``subscriptions``: what is bought — the current subscription, the renewal engine, and paid access.
- ``collecting``: getting the money — the one collection path, failed payments (dunning), Pay now
  (checkout), refunds, credits, void and resend, and the processor's events.
- ``payment_methods``: what is charged — saved cards.
- At the top: the read models of the two pages that show everything at once (``overview`` for Billing
  details, ``console`` for the support console) and ``outcome``, the result type of console actions.

Each function takes a database session or ``Database`` and the moment it acts for (``now``); none of them
knows about requests or Flask.

It may import the layers below it: ``models``, ``money``, ``dates``, ``errors``, ``audit``, ``bounds``,
``db``, ``documents``, ``notifications`` and ``payments``. It is imported by ``web``, the worker, the CLI
and the app factory; never by ``models``, ``notifications``, ``documents``, ``payments``, ``auth`` or
``config``.
"""

# Registers the flush listener that writes the webhook events of every billing change: whoever changes
# billing data imports this package, so no session that does so can miss it.
from . import webhook_events  # noqa: E402,F401
