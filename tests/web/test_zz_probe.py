from tests.helpers import Browser, make_customer, make_staff
from portal.models import User

def test_probe(app, session, database, monkeypatch):
    acct, _ = make_customer(session); make_staff(session)
    from portal.billing import credits
    def broken(s, *a, **k):
        s.add(User(account_id=None, email="sam@support.example", name="x", password_hash="x", role="staff"))
        s.flush()
    monkeypatch.setattr(credits, "grant_credit", broken)
    s = Browser(app.test_client()); s.login("sam@support.example")
    s.get(f"/staff/accounts/{acct.id}/actions")
    app.testing = False
    app.config["PROPAGATE_EXCEPTIONS"] = False
    for htmx in (False, True):
        r = s.post(f"/staff/accounts/{acct.id}/credits", {"amount": "5", "reason": "x"}, htmx=htmx)
        print(r.status_code, r.headers.get("Content-Security-Policy") is not None, r.get_data(as_text=True)[:300])
