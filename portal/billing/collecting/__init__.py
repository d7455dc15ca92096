"""Getting the money: the one path every collection takes (``collection``), failed payments and retries
(``dunning``), Pay now on the processor's page (``checkout``), refunds, account credit, the staff actions that
stop or repeat collection of an issued invoice (``invoice_actions``: void, resend), and the processor's events
(``events``, read through ``payloads``). Uses ``invoicing`` and ``payment_methods``; never ``subscriptions``."""
