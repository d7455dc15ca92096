"""What is owed: building and issuing invoices (gap-free numbers, frozen snapshots), tax, the seller they are
from, billing periods and the next charge's amount. Imports ``customer`` for the billing address; imported by
``subscriptions`` and ``collecting``."""
