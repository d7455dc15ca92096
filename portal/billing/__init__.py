"""The billing services: prices and tax, invoices, collecting payments (renewals, retries, checkout), cards,
credits, refunds and processor events. Each function takes a database session or ``Database`` and the
moment it acts for (``now``); none of them knows about requests or Flask.

It may import the layers below it: ``models``, ``money``, ``errors``, ``audit``, ``bounds``, ``db``,
``documents``, ``notifications`` and ``payments``. It is imported by ``web``, the worker, the CLI and the
app factory; never by ``models``, ``notifications``, ``documents``, ``payments``, ``auth`` or ``config``.
"""
