"""The console's audit log shows changes as "field: old → new" lines, not as raw dictionaries."""
from portal.web.audit_display import detail_lines


def test_billing_changes_read_as_one_line_per_field():
    details = {"changes": {"city": {"old": "Boston", "new": "Berlin"}, "region": {"old": "MA", "new": None}}}
    assert detail_lines(details) == ["city: Boston → Berlin", "region: MA → (none)"]


def test_an_email_change_and_plain_values():
    assert detail_lines({"old": "a@example.com", "new": "b@example.com"}) == ["a@example.com → b@example.com"]
    assert detail_lines({"card": "Visa •••• 4242", "card_id": 7}) == ["card: Visa •••• 4242", "card_id: 7"]
    assert detail_lines(None) == []
