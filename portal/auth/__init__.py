"""Passwords, login sessions, a user's own profile and support staff viewing an account as its customer
(impersonation). The web layer's login routes live in ``portal/web/auth.py``.

It may import ``models``, ``audit`` and ``errors``; it is imported by ``web`` (and the demo tools), never by
``billing``, ``notifications``, ``documents``, ``payments`` or ``models``.
"""
