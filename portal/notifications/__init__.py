"""Notices: e-mails to customers and webhook events to the product, each written with the change that causes
it (the outbox, ``webhooks``) and sent by the worker (``sender``, ``webhook_delivery``).

It may import ``models``, ``money``, ``config``, ``db`` and ``documents`` (templates, invoice PDFs to attach);
it must not import ``billing``, ``auth`` or ``web``, which call it.
"""
