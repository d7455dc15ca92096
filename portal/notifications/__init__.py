"""Notices to customers: written to the outbox with the change that causes them, sent by the worker.

It may import ``models``, ``money``, ``config``, ``db`` and ``documents`` (templates, invoice PDFs to attach);
it must not import ``billing``, ``auth`` or ``web``, which call it.
"""
