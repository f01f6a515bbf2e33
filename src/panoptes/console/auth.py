"""Sign in and out. The sign-in form has its own CSRF guard (a double-submit cookie)."""

from __future__ import annotations

import hmac
import logging
import secrets

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from panoptes.console.web import (
    LOGIN_CSRF_COOKIE,
    PREFIX,
    SESSION_COOKIE,
    ConsoleState,
    PageRequest,
    Refused,
    read_form,
    render,
)

log = logging.getLogger(__name__)


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


def signin_routes(state: ConsoleState):  # type: ignore[no-untyped-def]
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
        user = await run_in_threadpool(state.users.authenticate, name, password)
        if user is None:
            log.info("console sign-in refused for %r", name[:64])
            return _form(request, state, 401, "Wrong user name or password.", name)
        token, session = await run_in_threadpool(state.users.start_session, user)
        target = _safe_next((form.get("next") or [""])[0])
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            SESSION_COOKIE,
            token,
            path="/",
            httponly=True,
            samesite="lax",
            secure=state.secure_cookies,
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
