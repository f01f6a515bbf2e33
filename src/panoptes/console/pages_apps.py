"""Packages, deployed applications, the deploy wizard and the instance page."""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from panoptes.cloud.errors import ServiceError
from panoptes.console import wizard
from panoptes.console.charts import svg_chart
from panoptes.console.feeds import (
    CHARTS,
    METRICS_SERVICE,
    instance_log_group,
    read_logs,
    read_metric,
)
from panoptes.console.live import LiveUnavailable, open_mjpeg
from panoptes.console.pages_cameras import cameras_of
from panoptes.console.services import RegisteredPackageSource
from panoptes.console.web import PREFIX, PageRequest, Refused, field_errors, format_time

#: The deployment's progress as the page draws it, in order.
PROGRESS = (
    ("DEPLOYMENT_PENDING", "Waiting for the device"),
    ("DEPLOYMENT_REQUESTED", "Sent to the device"),
    ("DEPLOYMENT_IN_PROGRESS", "Installing"),
    ("DEPLOYMENT_SUCCEEDED", "Running"),
)
ABSTRACT_CAMERA_PACKAGE = "abstract_rtsp_media_source"
#: CreateApplicationInstance members the wizard's step 1 fills when given.
OPTIONAL_FIELDS = (
    ("Name", "name"),
    ("Description", "description"),
    ("RuntimeRoleArn", "role"),
    ("ApplicationInstanceIdToReplace", "replace"),
)


# --- packages ---------------------------------------------------------------------------


def _packages(req: PageRequest) -> list[dict[str, Any]]:
    console = req.state.console
    packages = console.all_pages(req.user, "ListPackages", "Packages")
    nodes = console.all_pages(req.user, "ListNodes", "Nodes")
    versions: dict[str, dict[tuple[str, str], list[dict]]] = defaultdict(dict)
    for node in nodes:
        key = (node["PackageVersion"], node["PatchVersion"])
        versions[node["PackageName"]].setdefault(key, []).append(node)
    out = []
    for pkg in sorted(packages, key=lambda p: p["PackageName"]):
        rows = []
        for (version, patch), its_nodes in sorted(versions[pkg["PackageName"]].items()):
            try:
                info = console.call(
                    req.user,
                    "DescribePackageVersion",
                    {
                        "PackageId": pkg["PackageId"],
                        "PackageVersion": version,
                        "PatchVersion": patch,
                    },
                )
            except ServiceError:
                continue
            rows.append({**info, "Nodes": its_nodes})
        out.append({**pkg, "Versions": rows})
    return out


async def packages_list(req: PageRequest) -> Response:
    packages = await run_in_threadpool(_packages, req)
    return req.render("packages.html", title="Packages", packages=packages)


# --- applications -----------------------------------------------------------------------


async def instances_list(req: PageRequest) -> Response:
    apps = await req.all_pages("ListApplicationInstances", "ApplicationInstances")
    show_removed = req.request.query_params.get("removed") == "1"
    if not show_removed:
        apps = [a for a in apps if a["Status"] != "REMOVAL_SUCCEEDED"]
    return req.render("instances.html", title="Applications", apps=apps, show_removed=show_removed)


# --- deploy wizard ----------------------------------------------------------------------


def _source(req: PageRequest) -> RegisteredPackageSource:
    return RegisteredPackageSource(req.state.console, req.user)


async def _devices(req: PageRequest) -> list[dict[str, Any]]:
    return await req.all_pages("ListDevices", "Devices", {"SortBy": "NAME"})


async def _start_values(req: PageRequest) -> dict[str, str]:
    """Step 1's fields: empty, or from the instance to replace or clone."""
    q = req.request.query_params
    origin_id = q.get("replace") or q.get("clone")
    if not origin_id:
        return {}
    details = await req.call(
        "DescribeApplicationInstanceDetails", {"ApplicationInstanceId": origin_id}
    )
    described = await req.call("DescribeApplicationInstance", {"ApplicationInstanceId": origin_id})
    graph = details["ManifestPayload"]["PayloadData"]
    with contextlib.suppress(ValueError):
        graph = json.dumps(json.loads(graph), indent=2)  # readable in the text box
    values = {
        "graph": graph,
        "overrides": (details.get("ManifestOverridesPayload") or {}).get("PayloadData", ""),
        "name": details.get("Name", ""),
        "description": details.get("Description", ""),
        "role": described.get("RuntimeRoleArn", ""),
        "device": details["DefaultRuntimeContextDevice"],
    }
    if q.get("replace"):
        values["replace"] = origin_id
    else:
        values["name"] = (values["name"] + "-copy")[:255] if values["name"] else ""
    return values


async def deploy_form(req: PageRequest) -> Response:
    values = await _start_values(req)
    return await _step1(req, values, [], 200)


async def _step1(req: PageRequest, values: dict[str, str], errors: list, status: int) -> Response:
    return req.render(
        "deploy.html",
        status,
        title="Deploy an application",
        values=values,
        devices=await _devices(req),
        problems=errors,
    )


async def deploy_validate(req: PageRequest) -> Response:
    """The live check of step 1: every problem of the graph at its JSON path."""
    checked = await run_in_threadpool(wizard.check_graph, req.field("graph"), _source(req))
    form = checked.form
    return JSONResponse(
        {
            "ok": checked.report.ok,
            "problems": checked.problems,
            "cameras": [c.node for c in form.cameras] if form else [],
            "parameters": [p.node for p in form.parameters if p.overridable] if form else [],
        }
    )


def _step1_values(req: PageRequest) -> dict[str, str]:
    keys = ("graph", "overrides", "name", "description", "role", "device", "replace")
    return {k: req.field(k) for k in keys}


async def deploy_configure(req: PageRequest) -> Response:
    """Step 1 -> step 2: the graph is checked, then asks for cameras, values and ports."""
    values = _step1_values(req)
    checked = await run_in_threadpool(wizard.check_graph, values["graph"], _source(req))
    if not checked.report.ok or checked.form is None:
        return await _step1(req, values, checked.problems, 400)
    if not values["device"]:
        return await _step1(req, values, [{"path": "device", "message": "choose a device",
                                           "hint": "", "severity": "error"}], 400)  # fmt: skip
    return await _step2(req, values, checked.form, [], 200)


async def _step2(
    req: PageRequest, values: dict[str, str], form: wizard.GraphForm, errors: list[str], status: int
) -> Response:
    cameras = await run_in_threadpool(cameras_of, req)
    picked: dict[str, list[str]] = {}
    param_values: dict[str, str] = {}
    if req.request.method == "POST" and "step" in req.form:
        for slot in form.cameras:
            picked[slot.node] = req.fields(f"camera.{slot.node}")
        param_values = {p.node: req.field(f"param.{p.node}") for p in form.parameters}
    elif values.get("overrides"):
        with contextlib.suppress(ValueError):
            picked, param_values = wizard.answers_from_overrides(json.loads(values["overrides"]))
    for p in form.parameters:
        param_values.setdefault(p.node, wizard.as_text(p.value) if p.value is not None else "")
    device = await req.call("DescribeDevice", {"DeviceId": values["device"]})
    return req.render(
        "deploy_configure.html",
        status,
        title="Deploy: cameras and parameters",
        values=values,
        form=form,
        cameras=cameras,
        picked=picked,
        param_values=param_values,
        device=device,
        errors=errors,
        launch_modes=wizard.LAUNCH_MODES,
    )


def _compact(doc: Any) -> str:
    # One line: the API's PayloadData pattern (^.+$) takes no newlines.
    return json.dumps(doc, separators=(",", ":"))


async def deploy(req: PageRequest) -> Response:
    values = _step1_values(req)
    checked = await run_in_threadpool(wizard.check_graph, values["graph"], _source(req))
    if checked.form is None or checked.doc is None:
        return await _step1(req, values, checked.problems, 400)
    form = checked.form
    cameras = {c["PackageName"]: c for c in await run_in_threadpool(cameras_of, req)}
    choices: dict[str, list[wizard.CameraChoice]] = {}
    for slot in form.cameras:
        for name in req.fields(f"camera.{slot.node}"):
            cam = cameras.get(name)
            if cam is None:
                return await _step2(req, values, form, [f"no camera {name!r}"], 400)
            choices.setdefault(slot.node, []).append(
                wizard.CameraChoice(
                    cam["PackageName"],
                    cam["PackageVersion"],
                    cam["Name"],
                    req.field(f"launch.{slot.node}.{name}", "onAppStart"),
                )
            )
    # A parameter the form did not send keeps the graph's value.
    params = {
        p.node: req.field(f"param.{p.node}")
        for p in form.parameters
        if p.overridable and f"param.{p.node}" in req.form
    }
    ports = set()
    for item in req.fields("port"):
        node, _, port = item.rpartition(":")
        if port.isdigit():
            ports.add((node, int(port)))
    unconfirmed = [r for r in form.ports if (r.node, r.container_port) not in ports]
    overrides, report = wizard.build_overrides(req.user.account_id, form, choices, params, ports)
    if overrides is None:
        return await _step2(req, values, form, [str(p) for p in report], 400)
    body: dict[str, Any] = {
        "DefaultRuntimeContextDevice": values["device"],
        "ManifestPayload": {"PayloadData": _compact(checked.doc)},
        "ManifestOverridesPayload": {"PayloadData": _compact(overrides)},
    }
    for key, name in OPTIONAL_FIELDS:
        if values[name].strip():
            body[key] = values[name].strip()
    try:
        out = await req.call("CreateApplicationInstance", body)
    except ServiceError as exc:
        return await _step2(req, values, form, field_errors(exc), 400)
    note = "Deployment started."
    if unconfirmed:
        note += " Inbound port(s) left closed: " + ", ".join(
            f"{r.node}:{r.container_port}" for r in unconfirmed
        )
    return req.redirect(f"{PREFIX}/instances/{out['ApplicationInstanceId']}", note)


# --- one instance -----------------------------------------------------------------------

#: The instance page's logs start this far back (follow mode goes on from there).
LOG_WINDOW = timedelta(hours=1)


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


async def _instance(req: PageRequest) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    instance_id = req.param("instance_id")
    app = await req.call("DescribeApplicationInstance", {"ApplicationInstanceId": instance_id})
    nodes = await req.all_pages(
        "ListApplicationInstanceNodeInstances", "NodeInstances",
        {"ApplicationInstanceId": instance_id},
    )  # fmt: skip
    return app, nodes


def _camera_packages(req: PageRequest) -> set[str]:
    return {c["PackageName"] for c in cameras_of(req)} | {ABSTRACT_CAMERA_PACKAGE}


async def instance_detail(req: PageRequest) -> Response:
    app, nodes = await _instance(req)
    cameras = await run_in_threadpool(_camera_packages, req)
    instance_id = app["ApplicationInstanceId"]
    ctx = req.state.console.context(req.user)
    live = await run_in_threadpool(req.state.live.mjpeg_url, ctx, instance_id)
    q = req.request.query_params
    logs = await run_in_threadpool(
        lambda: read_logs(
            req.state.console, req.user,
            instance_log_group(app["DefaultRuntimeContextDevice"], instance_id),
            stream=q.get("stream") or None, pattern=q.get("filter") or None,
            start_ms=_ms(req.state.now() - LOG_WINDOW),
        )
    )  # fmt: skip
    now = req.state.now()
    charts = []
    for chart in CHARTS:
        key = (
            instance_id
            if chart.dimension == "ApplicationInstanceId"
            else app["DefaultRuntimeContextDevice"]
        )
        series = await run_in_threadpool(
            lambda c=chart, k=key: read_metric(req.state.console, req.user, c, k, now=now)
        )
        if series is not None:
            charts.append((chart, svg_chart(series)))
    return req.render(
        "instance.html",
        title=app.get("Name") or instance_id,
        app=app,
        nodes=[{**n, "IsCamera": n.get("PackageName") in cameras} for n in nodes],
        progress=PROGRESS,
        live=live is not None,
        logs=logs,
        log_stream=q.get("stream", ""),
        log_filter=q.get("filter", ""),
        charts=charts,
        metrics_available=req.state.console.has(METRICS_SERVICE),
    )


async def instance_status(req: PageRequest) -> Response:
    app, nodes = await _instance(req)
    return JSONResponse(
        {
            "Status": app["Status"],
            "StatusDescription": app.get("StatusDescription", ""),
            "HealthStatus": app["HealthStatus"],
            "Nodes": {n["NodeInstanceId"]: n["CurrentStatus"] for n in nodes},
        }
    )


async def instance_logs(req: PageRequest) -> Response:
    """Log events as JSON for the page's follow mode (after ``token``)."""
    app, _ = await _instance(req)
    q = req.request.query_params
    page = await run_in_threadpool(
        lambda: read_logs(
            req.state.console, req.user,
            instance_log_group(app["DefaultRuntimeContextDevice"], app["ApplicationInstanceId"]),
            stream=q.get("stream") or None, pattern=q.get("filter") or None,
            next_token=q.get("token") or None,
            start_ms=int(q["after"]) if q.get("after", "").isdigit() else None,
        )
    )  # fmt: skip
    return JSONResponse(
        {
            "available": page.available,
            "error": page.error,
            "events": [
                {
                    "time": format_time(e["timestamp"]),
                    "ms": e["ms"],
                    "stream": e["stream"],
                    "message": e["message"],
                }
                for e in page.events
            ],
            "token": page.next_token,
        }
    )


async def instance_signal(req: PageRequest) -> Response:
    instance_id = req.param("instance_id")
    node, signal = req.field("node"), req.field("signal")
    if signal not in ("PAUSE", "RESUME"):
        raise Refused(400, "signal: PAUSE or RESUME")
    await req.call(
        "SignalApplicationInstanceNodeInstances",
        {
            "ApplicationInstanceId": instance_id,
            "NodeSignals": [{"NodeInstanceId": node, "Signal": signal}],
        },
    )
    verb = "Pause" if signal == "PAUSE" else "Resume"
    return req.redirect(f"{PREFIX}/instances/{instance_id}", f"{verb} sent to camera {node}.")


async def instance_remove(req: PageRequest) -> Response:
    instance_id = req.param("instance_id")
    await req.call("RemoveApplicationInstance", {"ApplicationInstanceId": instance_id})
    return req.redirect(f"{PREFIX}/instances/{instance_id}", "Removal requested.")


async def instance_live(req: PageRequest) -> Response:
    """The instance's output video, relayed from the device (multipart MJPEG)."""
    instance_id = req.param("instance_id")
    await req.call("DescribeApplicationInstance", {"ApplicationInstanceId": instance_id})
    ctx = req.state.console.context(req.user)
    url = await run_in_threadpool(req.state.live.mjpeg_url, ctx, instance_id)
    if url is None:
        raise Refused(404, "this application has no live output yet")
    try:
        stream = await open_mjpeg(url)
    except LiveUnavailable as exc:
        raise Refused(502, str(exc)) from None
    return StreamingResponse(
        stream.body, media_type=stream.content_type, headers={"Cache-Control": "no-store"}
    )
