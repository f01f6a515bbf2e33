"""Data sources: camera streams registered with CreateNodeFromTemplateJob, with thumbnails.

A camera is a package of the account (one media_source node). Editing registers a
new version (the next major: 1.0 -> 2.0) and then deregisters the old one if no
application uses it, so a failed edit leaves the camera as it was. Credentials are
write-only: the forms never show them back, the list shows the stream without
them.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from panoptes.cloud.errors import ServiceError
from panoptes.console.live import LiveUnavailable, stream_url
from panoptes.console.services import BY_NAME
from panoptes.console.web import PREFIX, PageRequest, Refused, field_errors

TEMPLATE = "RTSP_CAMERA_STREAM"


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(x) if x.isdigit() else 0 for x in version.split("."))


def public_stream(url: str) -> str:
    """The stream URL without its userinfo: what the list may show."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=host))


def cameras_of(req: PageRequest) -> list[dict[str, Any]]:
    """The account's cameras, newest version of each, by name (blocking)."""
    console = req.state.console
    nodes = console.all_pages(req.user, "ListNodes", "Nodes", {"Category": "MEDIA_SOURCE"})
    latest: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if node.get("OwnerAccount") not in (None, req.user.account_id):
            continue
        name = node["PackageName"]
        if name not in latest or _version_key(node["PackageVersion"]) > _version_key(
            latest[name]["PackageVersion"]
        ):
            latest[name] = node
    jobs = {
        j["NodeName"]: j
        for j in console.all_pages(req.user, "ListNodeFromTemplateJobs", "NodeFromTemplateJobs")
        if j["Status"] == "SUCCEEDED"
    }
    out = []
    for name in sorted(latest):
        node = latest[name]
        stream = ""
        if node["Name"] in jobs:
            job = console.call(
                req.user, "DescribeNodeFromTemplateJob", {"JobId": jobs[node["Name"]]["JobId"]}
            )
            stream = public_stream(job["TemplateParameters"].get("StreamUrl", ""))
        out.append({**node, "Stream": stream})
    return out


async def cameras_list(req: PageRequest) -> Response:
    cameras = await run_in_threadpool(cameras_of, req)
    return req.render("cameras.html", title="Data sources", cameras=cameras)


def _form_values(req: PageRequest) -> dict[str, str]:
    return {k: req.field(k) for k in ("name", "description", "url", "username")}


async def camera_new_form(req: PageRequest) -> Response:
    return req.render("camera_form.html", title="Add a camera", values={}, errors=[], editing=None)


def _template_params(req: PageRequest, keep: dict[str, Any] | None) -> dict[str, str]:
    """TemplateParameters from the form; blank fields keep the edited camera's values."""
    url = req.field("url").strip() or (keep or {}).get("StreamUrl") or ""
    params = {"StreamUrl": url}
    username = req.field("username").strip() or (keep or {}).get("Username") or ""
    password = req.field("password") or (keep or {}).get("Password") or ""
    if username:
        params["Username"] = username
    if password:
        params["Password"] = password
    return params


async def _register(req: PageRequest, name: str, version: str, params: dict[str, str]) -> None:
    """CreateNodeFromTemplateJob, and its outcome: a FAILED job raises with its message."""
    body: dict[str, Any] = {
        "TemplateType": TEMPLATE,
        "OutputPackageName": name,
        "OutputPackageVersion": version,
        "NodeName": name,
        "TemplateParameters": params,
    }
    if description := req.field("description").strip():
        body["NodeDescription"] = description
    job = await req.call("CreateNodeFromTemplateJob", body)
    done = await req.call("DescribeNodeFromTemplateJob", {"JobId": job["JobId"]})
    if done["Status"] == "FAILED":
        raise ServiceError("ValidationException", done["StatusMessage"])


async def camera_new(req: PageRequest) -> Response:
    values = _form_values(req)
    name = values["name"].strip()
    try:
        await _register(req, name, "1.0", _template_params(req, None))
    except ServiceError as exc:
        return req.render("camera_form.html", 400, title="Add a camera", values=values,
                          errors=field_errors(exc), editing=None)  # fmt: skip
    return req.redirect(f"{PREFIX}/cameras", f"Camera {name} added.")


async def _camera(req: PageRequest, name: str) -> dict[str, Any]:
    cameras = await run_in_threadpool(cameras_of, req)
    for cam in cameras:
        if cam["PackageName"] == name:
            return cam
    raise Refused(404, f"no camera {name!r} in this account")


async def camera_edit_form(req: PageRequest) -> Response:
    cam = await _camera(req, req.param("name"))
    values = {"name": cam["PackageName"], "description": cam.get("Description", "")}
    return req.render("camera_form.html", title=f"Edit {cam['PackageName']}", values=values,
                      errors=[], editing=cam)  # fmt: skip


async def camera_edit(req: PageRequest) -> Response:
    cam = await _camera(req, req.param("name"))
    name, old_version = cam["PackageName"], cam["PackageVersion"]
    keep = _stream_of(req, name, old_version)
    version = f"{_version_key(old_version)[0] + 1}.0"
    try:
        await _register(req, name, version, _template_params(req, keep))
    except ServiceError as exc:
        values = {**_form_values(req), "name": name}
        return req.render("camera_form.html", 400, title=f"Edit {name}", values=values,
                          errors=field_errors(exc), editing=cam)  # fmt: skip
    req.state.snapshots.forget(f"{req.user.account_id}/{name}")
    note = f"Camera {name} saved as version {version}."
    try:
        await req.call(
            "DeregisterPackageVersion",
            {
                "PackageId": BY_NAME + name,
                "PackageVersion": old_version,
                "PatchVersion": cam["PatchVersion"],
            },
        )
    except ServiceError as exc:
        note += f" Version {old_version} stays registered: {exc.message}"
    return req.redirect(f"{PREFIX}/cameras", note)


async def camera_delete(req: PageRequest) -> Response:
    name = req.param("name")
    await req.call("DeletePackage", {"PackageId": BY_NAME + name, "ForceDelete": True})
    req.state.snapshots.forget(f"{req.user.account_id}/{name}")
    return req.redirect(f"{PREFIX}/cameras", f"Camera {name} removed.")


def _stream_of(req: PageRequest, name: str, version: str) -> dict[str, Any] | None:
    lookup = req.state.camera_stream
    return lookup(req.user.account_id, name, version) if lookup else None


async def camera_snapshot(req: PageRequest) -> Response:
    cam = await _camera(req, req.param("name"))
    stream = _stream_of(req, cam["PackageName"], cam["PackageVersion"])
    if stream is None:
        raise Refused(404, "no stream is known for this camera")
    url = stream_url(stream["StreamUrl"], stream.get("Username"), stream.get("Password"))
    try:
        jpeg = await run_in_threadpool(
            req.state.snapshots.get, f"{req.user.account_id}/{cam['PackageName']}", url
        )
    except LiveUnavailable as exc:
        raise Refused(502, str(exc)) from None
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})
