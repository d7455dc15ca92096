"""An e-mailed sign-in link end to end: asked for on the login page, sent by the outbox sender to a real SMTP
server (aiosmtpd), and the link in the received message signs the user in once."""
from __future__ import annotations

import re
from urllib.parse import urlsplit

from portal.models import User, utcnow
from portal.notifications.sender import send_pending

from ..helpers import Browser, make_customer
from ..web.test_portal_sessions import follow
from .test_outbox_smtp import parts, smtp, transport  # noqa: F401 (smtp is a fixture)


def test_the_link_in_the_received_email_signs_a_user_without_a_password_in_once(app, database, session, smtp):
    _, user = make_customer(session)
    session.get(User, user.id).password_hash = ""
    session.commit()
    browser = Browser(app.test_client())
    browser.get("/login")
    assert browser.post("/login/link", {"link-email": "ada@example.com"}).status_code == 200

    stats = send_pending(database, transport(smtp), now=utcnow())
    assert stats.sent == 1
    [(_, recipients, received)] = smtp.inbox.received
    assert recipients == ["ada@example.com"] and received["Subject"] == "Your sign-in link"
    bodies = parts(received)
    link = re.search(r"https?://\S+/portal/session/[\w-]+", bodies["text/plain"]).group(0)
    assert f'href="{link}"' in bodies["text/html"]

    assert follow(browser, urlsplit(link).path).headers["Location"].endswith("/billing")
    assert "ada@example.com" in browser.get("/billing").get_data(as_text=True)
    assert follow(Browser(app.test_client()), urlsplit(link).path).status_code == 410
