"""Sign in and out. The sign-in form has its own CSRF guard (a double-submit cookie)."""

from __future__ import annotations

import hmac
import logging
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from panoptes.console.web import (
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    ConsoleState,
    Endpoint,
    PageRequest,
    Refused,
    read_form,
    render,
)

log = logging.getLogger(__name__)

#: Failed sign-ins tolerated per user name (and, more loosely, per client address) in
#: WINDOW; beyond that, sign-in is refused until the oldest failure leaves the window.
MAX_FAILURES_PER_NAME = 5
MAX_FAILURES_PER_ADDRESS = 20
WINDOW = timedelta(minutes=15)


@dataclass
class SignInThrottle:
    """Slows password guessing: scrypt makes each guess cost; this caps their number."""

    failures: dict[str, list[datetime]] = field(default_factory=dict)

    def _recent(self, key: str, now: datetime) -> list[datetime]:
        kept = [t for t in self.failures.get(key, []) if now - t < WINDOW]
        if kept:
            self.failures[key] = kept
        else:
            self.failures.pop(key, None)
        return kept

    def wait(self, name: str, address: str, now: datetime) -> timedelta | None:
        """How long to wait before another try, or None when a try is allowed."""
        for key, limit in ((f"name:{name.lower()}", MAX_FAILURES_PER_NAME),
                           (f"addr:{address}", MAX_FAILURES_PER_ADDRESS)):  # fmt: skip
            recent = self._recent(key, now)
            if len(recent) >= limit:
                return recent[0] + WINDOW - now
        return None

    def failed(self, name: str, address: str, now: datetime) -> None:
        for key in (f"name:{name.lower()}", f"addr:{address}"):
            self.failures.setdefault(key, []).append(now)

    def succeeded(self, name: str) -> None:
        self.failures.pop(f"name:{name.lower()}", None)


def _safe_next(target: str) -> str:
    # Only back into the console: an open redirect would hand the session's page away.
    if target.startswith(PREFIX + "/") and not target.startswith("//"):
        return target
    return PREFIX + "/"


def _form(request: Request, state: ConsoleState, status: int = 200, error: str | None = None,
          name: str = "") -> Response:  # fmt: skip
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        state,
        "signin.html",
        status,
        login_csrf=token,
        error=error,
        name=name,
        next=_safe_next(request.query_params.get("next", "")),
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path=PREFIX + "/signin",
        httponly=True,
        samesite="strict",
        secure=state.secure_cookies,
    )
    return response


def signin_routes(
    state: ConsoleState,
) -> tuple[Endpoint, Endpoint, Callable[[PageRequest], Awaitable[Response]]]:
    """(sign-in page, sign-in POST, sign-out handler) sharing one attempt throttle."""
    throttle = SignInThrottle()

    async def signin_page(request: Request) -> Response:
        return _form(request, state)

    async def signin(request: Request) -> Response:
        try:
            form = await read_form(request)
        except Refused as exc:
            return render(request, state, "error.html", exc.status, message=exc.message)
        given = (form.get("csrf_token") or [""])[0]
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not given or not cookie or not hmac.compare_digest(given, cookie):
            return render(
                request,
                state,
                "error.html",
                403,
                message="the sign-in form's security token is missing: reload it and try again",
            )
        name = (form.get("username") or [""])[0].strip()
        password = (form.get("password") or [""])[0]
        address = request.client.host if request.client else "unknown"
        now = state.now()
        wait = throttle.wait(name, address, now)
        if wait is not None:
            minutes = max(1, math.ceil(wait.total_seconds() / 60))
            log.warning("console sign-in throttled for %r from %s", name[:64], address)
            return _form(request, state, 429, f"Too many failed sign-ins: try again in "
                         f"{minutes} minute(s).", name)  # fmt: skip
        user = await run_in_threadpool(state.users.authenticate, name, password)
        if user is None:
            throttle.failed(name, address, now)
            log.info("console sign-in refused for %r from %s", name[:64], address)
            return _form(request, state, 401, "Wrong user name or password.", name)
        throttle.succeeded(name)
        token, session = await run_in_threadpool(state.users.start_session, user)
        target = _safe_next((form.get("next") or [""])[0])
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            path="/",
            httponly=True,
            samesite="lax",
            secure=state.secure_cookies or request.url.scheme == "https",
            max_age=int((session.expires - state.now()).total_seconds()),
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path=PREFIX + "/signin")
        return response

    async def signout(req: PageRequest) -> Response:
        await run_in_threadpool(state.users.end_session, req.request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse(PREFIX + "/signin", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    return signin_page, signin, signout
