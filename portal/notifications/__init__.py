"""Notices to customers: written to the outbox with the change that causes them, sent by the worker."""
