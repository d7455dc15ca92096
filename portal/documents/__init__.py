"""Documents rendered outside a request: the Jinja environment for e-mails and PDFs (``rendering``) and the
invoice PDF (``pdf``).

It sits below the services so that both ``billing`` (and the web routes) and ``notifications`` (e-mail
attachments) can use it without one of them importing the other. It may import ``models``, ``money`` and
``errors``; it must not import ``billing``, ``auth``, ``notifications``, ``payments`` or ``web``.
"""
