"""Demo mode: ``seed`` writes the deterministic demo accounts that ``portal demo`` serves, and ``mailbox`` is
the blueprint that shows the e-mails the demo wrote to disk (/demo/mail).

Only ``portal.cli`` (the ``demo`` command) and the web layer's registration, in demo mode only, import from
here; the product's services and blueprints never do. Nothing here is imported when the package is.
"""
