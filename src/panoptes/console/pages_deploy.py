"""The deploy wizard: graph.json (checked as typed) -> cameras, values, ports -> deployment.

Step 1 takes the graph, name, description, role and device (prefilled from an
instance for Replace and Clone); step 2 asks what the graph leaves to the deployer;
the overrides are written by `wizard.build_overrides` and the deployment is the API's
CreateApplicationInstance.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from panoptes.cloud.errors import ServiceError
from panoptes.console import wizard
from panoptes.console.pages_cameras import cameras_of
from panoptes.console.services import RegisteredPackageSource
from panoptes.console.web import PREFIX, PageRequest, field_errors

#: CreateApplicationInstance members the wizard's step 1 fills when given.
OPTIONAL_FIELDS = (
    ("Name", "name"),
    ("Description", "description"),
    ("RuntimeRoleArn", "role"),
    ("ApplicationInstanceIdToReplace", "replace"),
)


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
