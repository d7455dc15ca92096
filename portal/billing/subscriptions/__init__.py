"""What is bought: the account's current subscription, the renewal engine that issues each period's invoice,
and whether an account has paid access right now. Uses ``invoicing`` to issue and ``collecting`` to charge."""
