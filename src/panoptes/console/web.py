"""The console's small web framework: templates, sign-in guard, CSRF, forms, service calls.

Every page handler is ``async def handler(req: PageRequest) -> Response``, wrapped
by `page` (a signed-in user required; POSTs must carry the session's CSRF token as
the ``csrf_token`` form field or the ``X-CSRF-Token`` header). Service calls run in
the thread pool, as the API front runs them.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from panoptes.cloud.errors import ServiceError
from panoptes.console.feeds import LiveVideo, NoLiveVideo
from panoptes.console.live import SnapshotCache
from panoptes.console.services import Console
from panoptes.console.users import Session, User, Users

log = logging.getLogger(__name__)

PREFIX = "/console"
SESSION_COOKIE = "panoptes_session"
LOGIN_CSRF_COOKIE = "panoptes_login_csrf"
FLASH_COOKIE = "panoptes_flash"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 4 << 20  # a pasted graph.json is a few KiB; 4 MiB bounds a bad client
TEMPLATES = Path(__file__).with_name("templates")


class Refused(Exception):
    """A request the console will not serve: status and a message for the user."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def format_time(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return "" if value is None else str(value)


def make_templates() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = format_time
    env.filters["urlquote"] = lambda s: quote(str(s), safe="")
    return env


@dataclass
class ConsoleState:
    """What every handler reaches: services, users, video seams, templates."""

    console: Console
    users: Users
    live: LiveVideo = field(default_factory=NoLiveVideo)
    #: (account, camera package name, version) -> decrypted stream, for thumbnails.
    camera_stream: Callable[[str, str, str], dict[str, Any] | None] | None = None
    snapshots: SnapshotCache = field(default_factory=SnapshotCache)
    secure_cookies: bool = False
    templates: Environment = field(default_factory=make_templates)
    #: Provisioning archives kept until their token expires: (user id, device) -> (bytes, expiry).
    archives: dict[tuple[int, str], tuple[bytes, datetime]] = field(default_factory=dict)

    def now(self) -> datetime:
        return self.users.now()


@dataclass
class PageRequest:
    request: Request
    state: ConsoleState
    session: Session
    form: dict[str, list[str]] = field(default_factory=dict)

    @property
    def user(self) -> User:
        return self.session.user

    def param(self, name: str) -> str:
        return self.request.path_params[name]

    def field(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0] if values else default

    def fields(self, name: str) -> list[str]:
        return self.form.get(name, [])

    async def call(self, operation: str, params: dict[str, Any] | None = None, **kw: Any) -> dict:
        return await run_in_threadpool(
            self.state.console.call, self.user, operation, params or {}, **kw
        )

    async def all_pages(self, operation: str, key: str, params: dict | None = None) -> list[dict]:
        return await run_in_threadpool(
            self.state.console.all_pages, self.user, operation, key, params or {}
        )

    def render(self, template: str, status: int = 200, **context: Any) -> HTMLResponse:
        return render(self.request, self.state, template, status, session=self.session, **context)

    def redirect(self, path: str, flash: str | None = None) -> RedirectResponse:
        response = RedirectResponse(path, status_code=303)
        if flash:
            set_flash(response, flash, self.state.secure_cookies)
        return response


def render(
    request: Request,
    state: ConsoleState,
    template: str,
    status: int = 200,
    session: Session | None = None,
    **context: Any,
) -> HTMLResponse:
    flash = request.cookies.get(FLASH_COOKIE)
    html = state.templates.get_template(template).render(
        prefix=PREFIX,
        session=session,
        csrf_token=session.csrf_token if session else "",
        flash=unquote(flash) if flash else None,
        path=request.url.path,
        **context,
    )
    response = HTMLResponse(html, status_code=status)
    if flash:
        response.delete_cookie(FLASH_COOKIE, path="/")
    # Pages show account data: never cached, never framed by another site.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; "
        "script-src 'self'; frame-ancestors 'none'; form-action 'self'"
    )
    return response


def set_flash(response: Response, text: str, secure: bool) -> None:
    response.set_cookie(
        FLASH_COOKIE, quote(text[:500]), path="/", httponly=True, samesite="lax", secure=secure
    )


async def read_form(request: Request) -> dict[str, list[str]]:
    """An urlencoded form body (the console's forms send nothing else)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip()
    if ctype not in ("application/x-www-form-urlencoded", ""):
        return {}
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise Refused(413, "the form is too large (4 MiB at most)")
    return parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)


def check_csrf(expected: str, form: dict[str, list[str]], request: Request) -> None:
    given = request.headers.get(CSRF_HEADER) or (form.get("csrf_token") or [""])[0]
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Refused(
            403, "the form's security token is missing or wrong: reload the page and try again"
        )


def field_errors(exc: ServiceError) -> list[str]:
    """A ServiceError as lines for a form: one per field the API named, else its message."""
    fields = exc.fields.get("Fields") or []
    if fields:
        return [f"{f['Name']}: {f['Message']}" for f in fields]
    return [exc.message]


Handler = Callable[[PageRequest], Awaitable[Response]]


Endpoint = Callable[[Request], Awaitable[Response]]


def page(state: ConsoleState, handler: Handler, *, json: bool = False) -> Endpoint:
    """Wrap HANDLER: signed-in users only; CSRF checked on POST; errors become pages."""

    async def endpoint(request: Request) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        session = await run_in_threadpool(state.users.session, token)
        if session is None:
            if json or request.method != "GET":
                return _refusal(request, state, 401, "your session ended: sign in again", json)
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(
                f"{PREFIX}/signin?next={quote(target, safe='')}", status_code=303
            )
        try:
            form: dict[str, list[str]] = {}
            if request.method == "POST":
                form = await read_form(request)
                check_csrf(session.csrf_token, form, request)
            return await handler(PageRequest(request, state, session, form))
        except Refused as exc:
            return _refusal(request, state, exc.status, exc.message, json, session)
        except ServiceError as exc:
            if exc.code == "ResourceNotFoundException":
                return _refusal(request, state, 404, exc.message, json, session)
            return _refusal(request, state, 400, exc.message, json, session)

    return endpoint


def _refusal(
    request: Request,
    state: ConsoleState,
    status: int,
    message: str,
    json: bool,
    session: Session | None = None,
) -> Response:
    if json:
        return JSONResponse({"message": message}, status_code=status)
    return render(request, state, "error.html", status, session=session, message=message)
