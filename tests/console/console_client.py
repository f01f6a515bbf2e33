"""A browser without JavaScript for the console tests: cookies, forms and their CSRF tokens.

(Its own module, not conftest.py: test modules import it by name, and every test
folder has a conftest.)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx
from api_helpers import Stack

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@dataclass
class ConsoleClient:
    """A browser without JavaScript: follows what the pages say."""

    http: httpx.Client
    stack: Stack

    def sign_in(self, name: str, password: str) -> httpx.Response:
        form = self.http.get("/console/signin")
        return self.http.post(
            "/console/signin",
            data={"csrf_token": csrf_of(form.text), "username": name, "password": password,
                  "next": "/console/instances"},
        )  # fmt: skip

    def submit(self, page: str, action: str, data: dict | None = None) -> httpx.Response:
        """POST ACTION with the CSRF token of the form on PAGE, as the page's form would."""
        html = self.http.get(page).text
        return self.http.post(action, data={"csrf_token": csrf_of(html), **(data or {})})


def second_account_user(stack: Stack, name: str = "other") -> ConsoleClient:
    """A user of another account, signed in (the caller's test closes nothing: tmp stack)."""
    from datetime import UTC, datetime

    from panoptes.cloud.db.models import Account

    with stack.server.backend.db.transaction() as s:
        s.add(Account(id="999999999999", created=datetime.now(UTC)))
    stack.server.console.users.add(name, "999999999999", "another-long-password")
    client = ConsoleClient(httpx.Client(base_url=stack.url, follow_redirects=False), stack)
    assert client.sign_in(name, "another-long-password").status_code == 303
    return client
