"""Signing in, sessions and CSRF: what the console refuses, and that the API is unaffected."""

from __future__ import annotations

import stat
from datetime import timedelta

import pytest
from console_client import ConsoleClient, csrf_of

from panoptes.console.passwords import verify_password
from panoptes.console.web import SESSION_COOKIE


def test_the_first_start_creates_a_console_user_with_a_password_file(stack, admin_password):
    user = stack.server.console_user
    assert user.name == "admin" and user.account_id == stack.account
    assert user.password_file.read_text().split() == ["admin", admin_password]
    assert stat.S_IMODE(user.password_file.stat().st_mode) == 0o600
    assert admin_password in user.message("http://x/console/")


def test_a_browser_at_the_root_is_sent_to_sign_in(anonymous: ConsoleClient):
    root = anonymous.http.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/console/"
    page = anonymous.http.get("/console/devices")
    assert page.status_code == 303
    assert page.headers["location"] == "/console/signin?next=%2Fconsole%2Fdevices"


def test_signed_requests_at_the_root_still_reach_the_api(stack):
    # S3 ListBuckets is a signed GET /: the console must not swallow it.
    stack.client().create_package(PackageName="pkg")
    buckets = [b["Name"] for b in stack.s3().list_buckets()["Buckets"]]
    assert buckets == [f"panoptes-{stack.account}"]


def test_right_password_signs_in_and_lands_where_asked(anonymous, admin_password):
    response = anonymous.sign_in("admin", admin_password)
    assert response.status_code == 303 and response.headers["location"] == "/console/instances"
    page = anonymous.http.get("/console/instances")
    assert page.status_code == 200 and "admin · account" in page.text


def test_wrong_password_and_unknown_user_are_refused_alike(anonymous, admin_password):
    for name, password in (("admin", admin_password + "x"), ("nobody", admin_password)):
        response = anonymous.sign_in(name, password)
        assert response.status_code == 401
        assert "Wrong user name or password." in response.text
        assert SESSION_COOKIE not in anonymous.http.cookies
    assert anonymous.http.get("/console/devices").status_code == 303


def test_sign_in_without_the_forms_token_is_refused(anonymous, admin_password):
    response = anonymous.http.post(
        "/console/signin", data={"username": "admin", "password": admin_password}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in anonymous.http.cookies


def test_the_next_target_never_leaves_the_console(anonymous, admin_password):
    form = anonymous.http.get("/console/signin")
    response = anonymous.http.post(
        "/console/signin",
        data={"csrf_token": csrf_of(form.text), "username": "admin", "password": admin_password,
              "next": "//evil.example/phish"},
    )  # fmt: skip
    assert response.headers["location"] == "/console/"


def test_an_expired_session_is_refused(stack, console: ConsoleClient):
    users = stack.server.console.users
    assert console.http.get("/console/devices").status_code == 200
    html = console.http.get("/console/devices/new").text
    real_now = users.now
    users.now = lambda: real_now() + users.idle + timedelta(seconds=1)
    try:
        page = console.http.get("/console/devices")
        assert page.status_code == 303 and page.headers["location"].startswith("/console/signin")
        posted = console.http.post(
            "/console/devices/new", data={"csrf_token": csrf_of(html), "name": "late"}
        )
        assert posted.status_code == 401 and "session ended" in posted.text
    finally:
        users.now = real_now
    # Expired sessions are gone for good, not revived when the clock is back.
    assert console.http.get("/console/devices").status_code == 303
    assert stack.client().list_devices()["Devices"] == []


def test_a_session_ends_at_its_absolute_limit_even_when_used(stack, console: ConsoleClient):
    users = stack.server.console.users
    real_now = users.now
    start = real_now()
    step = users.idle - timedelta(minutes=5)
    try:
        elapsed = timedelta(0)
        while elapsed + step < users.absolute:
            elapsed += step
            users.now = lambda e=elapsed: start + e
            assert console.http.get("/console/devices").status_code == 200
        users.now = lambda: start + users.absolute + timedelta(seconds=1)
        assert console.http.get("/console/devices").status_code == 303
    finally:
        users.now = real_now


def test_posts_without_the_csrf_token_are_refused(stack, console: ConsoleClient):
    for data, headers in (
        ({"name": "no-token"}, {}),
        ({"name": "bad-token", "csrf_token": "forged"}, {}),
        ({"name": "bad-header"}, {"X-CSRF-Token": "forged"}),
    ):
        response = console.http.post("/console/devices/new", data=data, headers=headers)
        assert response.status_code == 403, data
        assert "security token" in response.text
    assert stack.client().list_devices()["Devices"] == []


def test_the_csrf_header_is_accepted_in_place_of_the_field(stack, console: ConsoleClient):
    token = csrf_of(console.http.get("/console/devices/new").text)
    response = console.http.post(
        "/console/devices/new", data={"name": "by-header"}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 303
    assert [d["Name"] for d in stack.client().list_devices()["Devices"]] == ["by-header"]


def test_signing_out_ends_the_session_on_the_server(console: ConsoleClient):
    token = console.http.cookies[SESSION_COOKIE]
    response = console.submit("/console/devices", "/console/signout")
    assert response.status_code == 303
    console.http.cookies.set(SESSION_COOKIE, token)  # a copied cookie is worth nothing now
    assert console.http.get("/console/devices").status_code == 303


def test_passwords_are_stored_as_scrypt_hashes(stack, admin_password):
    from sqlalchemy import select

    from panoptes.console.models import ConsoleUser

    with stack.server.backend.db.session() as s:
        stored = s.scalar(select(ConsoleUser.password_hash))
    assert stored.startswith("scrypt$") and admin_password not in stored
    assert verify_password(admin_password, stored)
    assert not verify_password(admin_password + "!", stored)


def test_password_guessing_is_capped_per_user_name(stack, anonymous, admin_password):
    from panoptes.console.auth import MAX_FAILURES_PER_NAME, WINDOW

    for _ in range(MAX_FAILURES_PER_NAME):
        assert anonymous.sign_in("admin", "not-the-password").status_code == 401
    blocked = anonymous.sign_in("admin", admin_password)  # even the right one, for now
    assert blocked.status_code == 429 and "Too many failed sign-ins" in blocked.text
    assert SESSION_COOKIE not in anonymous.http.cookies
    users = stack.server.console.users
    real_now = users.now
    users.now = lambda: real_now() + WINDOW
    try:
        assert anonymous.sign_in("admin", admin_password).status_code == 303
    finally:
        users.now = real_now


@pytest.mark.slow
def test_sessions_on_postgresql(tmp_path):
    import httpx
    from api_helpers import running_stack

    from pg_support import pg_available

    if not pg_available():
        pytest.skip("PostgreSQL is not running on 127.0.0.1:5432")
    with running_stack("postgresql", tmp_path / "pg") as st:  # a fresh database
        password = st.server.console_user.new_password
        with httpx.Client(base_url=st.url, follow_redirects=False) as http:
            client = ConsoleClient(http, st)
            assert client.sign_in("admin", password).status_code == 303
            assert client.http.get("/console/devices").status_code == 200
            assert client.submit("/console/devices", "/console/signout").status_code == 303
            assert client.http.get("/console/devices").status_code == 303
