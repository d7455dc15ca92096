"""A minimal HTTP client for set-up steps: logging in, reading a page's CSRF token and card ids. The load
itself comes from wrk (``perf.wrk``) or aiohttp (``perf.load``)."""
from __future__ import annotations

import re

from .seed import PASSWORD

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
CARD_ID_RE = re.compile(r'<li class="card[^"]*" id="card-(\d+)"')
SESSION_COOKIE = "portal_session"


def http_request(base_url: str, method: str, path: str, *, cookies: dict | None = None, data: dict | None = None,
                 headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    """One request without following redirects; Set-Cookie values are merged into ``cookies``."""
    import http.client
    from http.cookies import SimpleCookie
    from urllib.parse import urlencode, urlsplit

    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        sent = dict(headers or {})
        if cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        body = None
        if data is not None:
            body = urlencode(data)
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        content = response.read()
        if cookies is not None:
            for header in response.headers.get_all("Set-Cookie") or []:
                for name, morsel in SimpleCookie(header).items():
                    cookies[name] = morsel.value
        return response.status, dict(response.headers), content
    finally:
        conn.close()


def http_login(base_url: str, email: str, password: str = PASSWORD) -> tuple[dict, str, str]:
    """Log in like a browser; returns the cookies, the CSRF token and the Billing details page."""
    cookies: dict = {}
    _, _, page = http_request(base_url, "GET", "/login", cookies=cookies)
    token = CSRF_RE.search(page.decode()).group(1)
    status, _, _ = http_request(base_url, "POST", "/login", cookies=cookies,
                                data={"email": email, "password": password, "csrf_token": token})
    if status != 303:
        raise RuntimeError(f"login as {email} answered {status}")
    status, _, page = http_request(base_url, "GET", "/billing", cookies=cookies)
    if status != 200:
        raise RuntimeError(f"GET /billing answered {status}")
    html = page.decode()
    return cookies, CSRF_RE.search(html).group(1), html
