"""The console's routes, mounted by `panoptes serve` beside the API on one port.

``/`` sends a browser to the console; a signed request to ``/`` (S3 ListBuckets)
still reaches the API, as does any signed request under /console (a bucket may be
named "console"): `_BrowserOnly` hands those to the AWS front.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from panoptes.cloud.backend import ServiceBackend
from panoptes.cloud.db import Database
from panoptes.cloud.storage.base import ObjectStore
from panoptes.console import pages_cameras as cams
from panoptes.console import pages_deploy as deploy
from panoptes.console import pages_devices as devs
from panoptes.console import pages_instances as inst
from panoptes.console import pages_packages as packages
from panoptes.console.auth import signin_routes
from panoptes.console.feeds import LiveVideo, NoLiveVideo
from panoptes.console.services import Console
from panoptes.console.users import Users
from panoptes.console.web import PREFIX, ConsoleState, Endpoint, Handler, PageRequest, page

STATIC = Path(__file__).with_name("static")


def _is_signed(scope: Scope) -> bool:
    """An AWS request: SigV4/SigV2 in the Authorization header or a presigned query."""
    for key, value in scope.get("headers", []):
        if key == b"authorization" and value.startswith((b"AWS4-", b"AWS ")):
            return True
    query = scope.get("query_string", b"")
    return b"X-Amz-Signature=" in query or b"Signature=" in query


class _BrowserOnly:
    """An ASGI app that hands signed (AWS) requests to the API front instead of APP."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_signed(scope):
            router: Router = scope["app"].router
            await router.default(scope, receive, send)
            return
        await self.app(scope, receive, send)


@dataclass
class ConsoleRoutes:
    state: ConsoleState
    routes: list[BaseRoute]


def build_console(
    backends: Mapping[str, ServiceBackend],
    store: ObjectStore,
    db: Database,
    region: str,
    *,
    users: Users | None = None,
    live: LiveVideo | None = None,
    camera_stream: Callable[[str, str, str], dict[str, Any] | None] | None = None,
    secure_cookies: bool = False,
) -> ConsoleRoutes:
    """The console over BACKENDS (the API's own, by service name) and the database's users."""
    state = ConsoleState(
        console=Console(backends, store, region),
        users=users or Users(db),
        live=live or NoLiveVideo(),
        camera_stream=camera_stream,
        secure_cookies=secure_cookies,
    )
    signin_page, signin, signout = signin_routes(state)

    def p(handler: Handler, *, json: bool = False) -> Endpoint:
        return page(state, handler, json=json)

    async def home(_: PageRequest) -> Response:
        return RedirectResponse(f"{PREFIX}/instances", status_code=303)

    console_routes = [
        Route("/", p(home)),
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", p(signout), methods=["POST"]),
        Route("/devices", p(devs.devices_list)),
        Route("/devices/new", p(devs.device_new_form), methods=["GET"]),
        Route("/devices/new", p(devs.device_new), methods=["POST"]),
        Route("/devices/{device_id}", p(devs.device_detail)),
        Route("/devices/{device_id}/provisioned", p(devs.device_provisioned)),
        Route("/devices/{device_id}/certificates.zip", p(devs.device_archive)),
        Route("/devices/{device_id}/reboot", p(devs.device_reboot), methods=["POST"]),
        Route("/devices/{device_id}/update", p(devs.device_update), methods=["POST"]),
        Route("/devices/{device_id}/delete", p(devs.device_delete), methods=["POST"]),
        Route("/cameras", p(cams.cameras_list)),
        Route("/cameras/new", p(cams.camera_new_form), methods=["GET"]),
        Route("/cameras/new", p(cams.camera_new), methods=["POST"]),
        Route("/cameras/{name}/edit", p(cams.camera_edit_form), methods=["GET"]),
        Route("/cameras/{name}/edit", p(cams.camera_edit), methods=["POST"]),
        Route("/cameras/{name}/delete", p(cams.camera_delete), methods=["POST"]),
        Route("/cameras/{name}/snapshot.jpg", p(cams.camera_snapshot)),
        Route("/packages", p(packages.packages_list)),
        Route("/instances", p(inst.instances_list)),
        Route("/deploy", p(deploy.deploy_form), methods=["GET"]),
        Route("/deploy", p(deploy.deploy), methods=["POST"]),
        Route("/deploy/validate", p(deploy.deploy_validate, json=True), methods=["POST"]),
        Route("/deploy/configure", p(deploy.deploy_configure), methods=["POST"]),
        Route("/instances/{instance_id}", p(inst.instance_detail)),
        Route("/instances/{instance_id}/status.json", p(inst.instance_status, json=True)),
        Route("/instances/{instance_id}/logs.json", p(inst.instance_logs, json=True)),
        Route("/instances/{instance_id}/live.mjpg", p(inst.instance_live)),
        Route("/instances/{instance_id}/signal", p(inst.instance_signal), methods=["POST"]),
        Route("/instances/{instance_id}/remove", p(inst.instance_remove), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def root(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=303)

    routes: list[BaseRoute] = [
        Route("/", _BrowserOnly(_asgi(root))),
        Mount(PREFIX, app=_BrowserOnly(Router(routes=console_routes))),
    ]
    return ConsoleRoutes(state, routes)


def _asgi(endpoint: Callable[[Request], Any]) -> ASGIApp:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        response = await endpoint(Request(scope, receive))
        await response(scope, receive, send)

    return app
