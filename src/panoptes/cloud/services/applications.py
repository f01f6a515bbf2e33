"""Application instances: deploy, describe, list, signal, remove.

CreateApplicationInstance checks the manifest and overrides with panoptes.spec
against the packages registered in the caller's account (latest patch, or the
pinned one), and answers one ValidationException listing every problem, one line
each ("path: message (fix: hint)"). A valid deployment is recorded with its
resolved plan (exact patch versions) in DEPLOYMENT_PENDING; the device drives it
on from there (device_view). ApplicationInstanceIdToReplace is only a link: the
old instance is removed when the new one succeeds, so a failed deployment leaves
the old one running.
"""

from __future__ import annotations

import functools
import json
import re
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select

from panoptes.cloud.db.models import ApplicationInstance, DeploymentCounter, Device, NodeInstance
from panoptes.cloud.errors import QuotaExceeded, ValidationError
from panoptes.cloud.services import states
from panoptes.cloud.services.catalog import RegisteredPackages
from panoptes.cloud.services.common import (
    Call,
    get_owned,
    invalid,
    iso,
    lock_account,
    make_token,
    max_results_of,
    new_id,
    owned,
    paginate,
    resume_key,
    set_tags,
    sha256_hex,
    tags_of,
    tags_of_many,
)
from panoptes.cloud.services.packages import node_id
from panoptes.spec import ManifestError, PackageRef, ResolvedApplication, resolve

GRAPH_SOURCE = "ManifestPayload"
OVERRIDES_SOURCE = "ManifestOverridesPayload"

STATUS_DESCRIPTIONS = {
    "DEPLOYMENT_PENDING": "Deployment pending: waiting for the device.",
    "DEPLOYMENT_REQUESTED": "Deployment requested: the device received the application.",
    "DEPLOYMENT_IN_PROGRESS": "Deployment in progress.",
    "DEPLOYMENT_SUCCEEDED": "Application deployed successfully.",
    "DEPLOYMENT_FAILED": "Deployment failed.",
    "DEPLOYMENT_ERROR": "Deployment error.",
    "REMOVAL_PENDING": "Removal pending: waiting for the device.",
    "REMOVAL_REQUESTED": "Removal requested.",
    "REMOVAL_IN_PROGRESS": "Removal in progress.",
    "REMOVAL_SUCCEEDED": "Application removed successfully.",
    "REMOVAL_FAILED": "Removal failed.",
}
STATUS_FILTERS = {
    "PROCESSING_DEPLOYMENT": (
        "DEPLOYMENT_PENDING",
        "DEPLOYMENT_REQUESTED",
        "DEPLOYMENT_IN_PROGRESS",
    ),
    "PROCESSING_REMOVAL": ("REMOVAL_PENDING", "REMOVAL_REQUESTED", "REMOVAL_IN_PROGRESS"),
}
_CAMERA_QUOTA = "camera streams; an application takes at most"
_NOT_FOUND = re.compile(r"^package (?P<ref>.+) was not found: no .*$")


def builtin_patch(ref: PackageRef) -> str:
    """Panorama's own packages have no registered patch here: a stable stand-in."""
    return sha256_hex(f"{ref.qualified}@{ref.version}".encode())


def get_instance(call: Call, instance_id: str) -> ApplicationInstance:
    return get_owned(call, ApplicationInstance, instance_id, "applicationInstance")


def set_status(
    row: ApplicationInstance, event: str, now: Any, description: str | None = None
) -> None:
    row.status = states.APPLICATION_INSTANCE.next(row.status, event, row.id)
    row.status_description = (description or STATUS_DESCRIPTIONS[row.status])[:255]
    row.updated = now


# --- CreateApplicationInstance --------------------------------------------------------


def _payload(p: dict[str, Any], member: str, required: bool) -> Any:
    data = (p.get(member) or {}).get("PayloadData")
    if not data:
        if required:
            raise invalid(f"{member}.PayloadData", "required: the application's graph.json")
        return None
    try:
        return json.loads(data)
    except ValueError as exc:
        raise invalid(f"{member}.PayloadData", f"is not JSON: {exc}") from None


def _problem_line(problem: Any, account: str) -> tuple[str, str]:
    message, hint = problem.message, problem.hint
    if m := _NOT_FOUND.match(message):
        message = f"package {m['ref']} is not registered in account {account}"
        hint = "register it (panorama-cli package-application) or fix the name and version"
    text = f"{message} (fix: {hint})" if hint else message
    path = problem.path
    if problem.source and problem.source not in (GRAPH_SOURCE, OVERRIDES_SOURCE):
        path = f"{problem.source}: {path}"
    return path, text


def _validate(call: Call, p: dict[str, Any]) -> tuple[ResolvedApplication, RegisteredPackages]:
    graph = _payload(p, "ManifestPayload", required=True)
    overrides = _payload(p, "ManifestOverridesPayload", required=False)
    source = RegisteredPackages(call)
    try:
        plan = resolve(
            graph,
            overrides,
            source,
            deployment=True,
            graph_source=GRAPH_SOURCE,
            overrides_source=OVERRIDES_SOURCE,
        )
    except ManifestError as exc:
        errors = exc.report.errors
        if errors and all(_CAMERA_QUOTA in e.message for e in errors):
            raise QuotaExceeded(
                errors[0].message, "panorama-camera-streams", resource_type="applicationInstance"
            ) from None
        lines = [_problem_line(e, call.account) for e in errors]
        text = "\n".join(f"{path}: {msg}" for path, msg in lines)
        raise ValidationError(
            f"the application is invalid ({len(lines)} problem(s)):\n{text}",
            fields=[{"Name": path, "Message": msg} for path, msg in lines],
            reason="FIELD_VALIDATION_FAILED",
        ) from None
    streams = sum(len(n.cameras) for n in plan.by_role("camera"))
    limit = call.env.settings.limits.camera_streams_per_application
    if streams > limit:
        raise QuotaExceeded(
            f"{streams} camera streams; an application takes at most {limit}",
            "panorama-camera-streams",
            resource_type="applicationInstance",
        )
    return plan, source


def _ref(ref: PackageRef | None, source: RegisteredPackages) -> dict[str, Any] | None:
    if ref is None:
        return None
    picked = source.picked.get((ref.qualified, ref.version))
    patch = picked.patch_version if picked else ref.patch_version or builtin_patch(ref)
    return {"account": ref.account, "name": ref.name, "version": ref.version, "patchVersion": patch}


def plan_document(plan: ResolvedApplication, source: RegisteredPackages) -> dict[str, Any]:
    """The resolved plan as JSON, with exact patch versions: what the device runs."""
    nodes = []
    for node in plan.nodes.values():
        nodes.append(
            {
                "name": node.name,
                "role": node.role,
                "package": _ref(node.package, source),
                "interface": node.interface.name if node.interface else None,
                "launch": node.launch,
                "parameterType": node.parameter_type,
                "value": node.value,
                "inputs": {
                    port: [
                        {"kind": b.kind, "producer": b.producer, "value": b.value} for b in bindings
                    ]
                    for port, bindings in node.inputs.items()
                },
                "cameras": [
                    {
                        "node": c.node,
                        "replaces": c.replaces,
                        "package": _ref(c.package, source),
                        "launch": c.launch,
                        "registered": c.registered,
                    }
                    for c in node.cameras
                ],
            }
        )
    return {
        "nodes": nodes,
        "edges": [{"producer": e.producer, "consumer": e.consumer} for e in plan.edges],
        "cameraStreams": {k: [c.node for c in v] for k, v in plan.camera_streams.items()},
        "routingRules": [
            {"node": r.node, "containerPort": r.container_port, "hostPort": r.host_port}
            for r in plan.routing_rules
        ],
        "packages": [_ref(r, source) for r in _dependencies(plan)],
        "warnings": list(plan.warnings),
    }


def _dependencies(plan: ResolvedApplication) -> list[PackageRef]:
    """Every package the device needs: the plan's plus the cameras' chosen in overrides."""
    refs = list(plan.packages)
    for node in plan.by_role("camera"):
        for cam in node.cameras:
            if cam.package is not None and cam.package not in refs:
                refs.append(cam.package)
    return refs


def _camera_interface(call: Call, ref: dict[str, Any] | None, source: RegisteredPackages) -> str:
    if ref is None or ref["account"] == "panorama":
        return "rtsp_v1_interface"
    picked = source.picked.get((f"{ref['account']}::{ref['name']}", ref["version"]))
    if picked is None:
        return ref["name"]
    return picked.manifest["nodePackage"]["interfaces"][0]["name"]


def _node_instances(
    call: Call, plan: dict[str, Any], source: RegisteredPackages
) -> list[NodeInstance]:
    out: dict[str, NodeInstance] = {}

    def add(name: str, ref: dict | None, interface: str | None, launch: str, camera: bool):
        if name in out:
            return
        out[name] = NodeInstance(
            position=len(out),
            node_instance_id=name,
            node_id=node_id(ref["name"], ref["version"], ref["patchVersion"], interface)
            if ref and interface
            else None,
            node_name=interface,
            package_name=ref["name"] if ref else None,
            package_version=ref["version"] if ref else None,
            patch_version=ref["patchVersion"] if ref else None,
            is_camera=camera,
            current_status="NOT_AVAILABLE",
            # onSignal cameras wait for a RESUME (the guide's multi-camera example).
            desired_state="PAUSED" if launch == "onSignal" else "RUNNING",
        )

    for node in plan["nodes"]:
        if node["role"] == "parameter":
            continue
        if node["role"] == "camera":
            for cam in node["cameras"]:
                iface = _camera_interface(call, cam["package"], source)
                add(cam["node"], cam["package"], iface, cam["launch"], True)
            continue
        add(node["name"], node["package"], node["interface"], node["launch"], False)
    return list(out.values())


def _count_quota(call: Call, device: Device, replacing: str | None) -> None:
    limits = call.env.settings.limits
    query = (
        select(func.count())
        .select_from(ApplicationInstance)
        .where(
            ApplicationInstance.device_id == device.id,
            ApplicationInstance.status.in_(states.ACTIVE_INSTANCE_STATUSES),
        )
    )
    if replacing:
        query = query.where(ApplicationInstance.id != replacing)
    if (call.session.scalar(query) or 0) >= limits.application_instances_per_device:
        raise QuotaExceeded(
            f"device {device.id} runs at most {limits.application_instances_per_device} "
            "applications",
            "panorama-application-instances",
            resource_type="device",
            resource_id=device.id,
        )
    today: date = call.now.date()
    counter = call.session.get(DeploymentCounter, (device.id, today))
    if counter is None:
        counter = DeploymentCounter(device_id=device.id, day=today, count=0)
        call.session.add(counter)
    if counter.count >= limits.deployments_per_device_per_day:
        raise QuotaExceeded(
            f"device {device.id} takes at most {limits.deployments_per_device_per_day} "
            "deployments a day",
            "panorama-deployments-per-day",
            resource_type="device",
            resource_id=device.id,
        )
    counter.count += 1


def create_application_instance(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    lock_account(call)
    device_id = p["DefaultRuntimeContextDevice"]
    device = owned(call, Device, device_id)
    if device is None:
        raise invalid("DefaultRuntimeContextDevice", f"no device {device_id} in this account")
    replacing = p.get("ApplicationInstanceIdToReplace")
    if replacing:
        old = owned(call, ApplicationInstance, replacing)
        if old is None:
            raise invalid("ApplicationInstanceIdToReplace", f"no application instance {replacing}")
        if old.device_id != device.id:
            raise invalid("ApplicationInstanceIdToReplace", f"{replacing} runs on another device")
    plan, source = _validate(call, p)
    _count_quota(call, device, replacing)
    doc = plan_document(plan, source)
    row = ApplicationInstance(
        id=new_id("applicationInstance"),
        account_id=call.account,
        region=call.ctx.region,
        name=p.get("Name"),
        description=p.get("Description"),
        device_id=device.id,
        manifest_payload=p["ManifestPayload"]["PayloadData"],
        overrides_payload=(p.get("ManifestOverridesPayload") or {}).get("PayloadData"),
        plan=doc,
        status="DEPLOYMENT_PENDING",
        status_description=STATUS_DESCRIPTIONS["DEPLOYMENT_PENDING"],
        health_status="NOT_AVAILABLE",
        replaces_id=replacing,
        runtime_role_arn=p.get("RuntimeRoleArn"),
        created=call.now,
        updated=call.now,
    )
    row.node_instances = _node_instances(call, doc, source)
    call.session.add(row)
    call.session.flush()
    set_tags(call, call.arn("applicationInstance", row.id), p.get("Tags"))
    return {"ApplicationInstanceId": row.id}


# --- reading --------------------------------------------------------------------------


def _summary(call: Call, row: Any, device_name: str | None, tags: dict[str, str]) -> dict[str, Any]:
    """A listing's entry; ``row`` is an ApplicationInstance or a row of its columns."""
    out: dict[str, Any] = {
        "ApplicationInstanceId": row.id,
        "Arn": call.arn("applicationInstance", row.id),
        "CreatedTime": row.created,
        "DefaultRuntimeContextDevice": row.device_id,
        "HealthStatus": row.health_status,
        "RuntimeContextStates": _contexts(row),
        "Status": row.status,
        "Tags": tags,
    }
    if device_name is not None:
        out["DefaultRuntimeContextDeviceName"] = device_name
    for key, value in (
        ("Name", row.name),
        ("Description", row.description),
        ("StatusDescription", row.status_description),
    ):
        if value is not None:
            out[key] = value
    return out


def _contexts(row: ApplicationInstance) -> list[dict[str, Any]]:
    out = []
    for s in row.runtime_context_states or []:
        out.append({**s, "DeviceReportedTime": datetime.fromisoformat(s["DeviceReportedTime"])})
    return out


def describe_application_instance(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    row = get_instance(call, p["ApplicationInstanceId"])
    device = call.session.get(Device, row.device_id)
    tags = tags_of(call.session, call.arn("applicationInstance", row.id))
    out = _summary(call, row, device.name if device is not None else None, tags)
    out["LastUpdatedTime"] = row.updated
    if row.replaces_id:
        out["ApplicationInstanceIdToReplace"] = row.replaces_id
    if row.runtime_role_arn:
        out["RuntimeRoleArn"] = row.runtime_role_arn
    return out


def describe_application_instance_details(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    row = get_instance(call, p["ApplicationInstanceId"])
    out: dict[str, Any] = {
        "ApplicationInstanceId": row.id,
        "CreatedTime": row.created,
        "DefaultRuntimeContextDevice": row.device_id,
        "ManifestPayload": {"PayloadData": row.manifest_payload},
    }
    if row.overrides_payload is not None:
        out["ManifestOverridesPayload"] = {"PayloadData": row.overrides_payload}
    if row.replaces_id:
        out["ApplicationInstanceIdToReplace"] = row.replaces_id
    if row.name is not None:
        out["Name"] = row.name
    if row.description is not None:
        out["Description"] = row.description
    return out


#: What a listing shows of an instance: never its manifests and plan (large).
_SUMMARY_COLUMNS = (
    ApplicationInstance.id,
    ApplicationInstance.created,
    ApplicationInstance.device_id,
    ApplicationInstance.health_status,
    ApplicationInstance.runtime_context_states,
    ApplicationInstance.status,
    ApplicationInstance.name,
    ApplicationInstance.description,
    ApplicationInstance.status_description,
)


@functools.lru_cache(maxsize=64)
def _listing(by_device: bool, by_status: bool, resumed: bool, limit: int) -> Select:
    """The page query for one shape of request (built once: values are bound)."""
    ai = ApplicationInstance
    query = (
        select(*_SUMMARY_COLUMNS, Device.name.label("device_name"))
        .outerjoin(Device, Device.id == ai.device_id)
        .where(ai.account_id == bindparam("account"))
        .order_by(ai.created.desc(), ai.id.desc())
        .limit(limit)
    )
    if by_device:
        query = query.where(ai.device_id == bindparam("device_id"))
    if by_status:
        query = query.where(ai.status.in_(bindparam("statuses", expanding=True)))
    if resumed:
        created, last_id = bindparam("last_created"), bindparam("last_id")
        query = query.where(or_(ai.created < created, and_(ai.created == created, ai.id < last_id)))
    return query


def list_application_instances(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    # Newest first, paged by key in SQL (index: account_id, created, id): one query for
    # the page with its devices' names, one for its tags, whatever the account holds.
    device_id, status = p.get("DeviceId"), p.get("StatusFilter")
    scope = f"ListApplicationInstances|{device_id}|{status}"
    max_results = max_results_of(p)
    values: dict[str, Any] = {"account": call.account}
    if device_id:
        values["device_id"] = device_id
    if status:
        values["statuses"] = list(STATUS_FILTERS.get(status, (status,)))
    last = resume_key(p, scope)
    if last is not None:
        values["last_created"], values["last_id"] = _instance_key(last)
    query = _listing(bool(device_id), bool(status), last is not None, max_results + 1)
    rows = call.session.execute(query, values).all()
    page = rows[:max_results]
    arns = {r.id: call.arn("applicationInstance", r.id) for r in page}
    tags = tags_of_many(call.session, list(arns.values()))
    out: dict[str, Any] = {
        "ApplicationInstances": [_summary(call, r, r.device_name, tags[arns[r.id]]) for r in page]
    }
    if len(rows) > max_results:
        out["NextToken"] = make_token((iso(page[-1].created), page[-1].id), scope)
    return out


def _instance_key(last: tuple[str, ...]) -> tuple[datetime, str]:
    """(created, id) from a ListApplicationInstances token's key."""
    try:
        created_text, last_id = last
        created = datetime.fromisoformat(created_text)
    except ValueError:
        raise invalid("NextToken", "is not a token this listing returned") from None
    if created.tzinfo is None:
        raise invalid("NextToken", "is not a token this listing returned")
    return created, last_id


def list_application_instance_dependencies(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    row = get_instance(call, p["ApplicationInstanceId"])
    deps = [d for d in row.plan["packages"] if d is not None]
    page = paginate(
        deps,
        lambda d: (d["name"], d["version"], d["patchVersion"]),
        p,
        f"ListApplicationInstanceDependencies|{row.id}",
    )
    return page.out(
        "PackageObjects",
        lambda d: {
            "Name": d["name"],
            "PackageVersion": d["version"],
            "PatchVersion": d["patchVersion"],
        },
    )


def _node_instance_out(n: NodeInstance) -> dict[str, Any]:
    out: dict[str, Any] = {"CurrentStatus": n.current_status, "NodeInstanceId": n.node_instance_id}
    for key, value in (
        ("NodeId", n.node_id),
        ("NodeName", n.node_name),
        ("PackageName", n.package_name),
        ("PackageVersion", n.package_version),
        ("PackagePatchVersion", n.patch_version),
    ):
        if value is not None:
            out[key] = value
    return out


def list_application_instance_node_instances(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    row = get_instance(call, p["ApplicationInstanceId"])
    page = paginate(
        row.node_instances,
        lambda n: (f"{n.position:06d}",),
        p,
        f"ListApplicationInstanceNodeInstances|{row.id}",
    )
    return page.out("NodeInstances", _node_instance_out)


# --- changing -------------------------------------------------------------------------


def signal_application_instance_node_instances(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    row = get_instance(call, p["ApplicationInstanceId"])
    if row.status not in states.ACTIVE_INSTANCE_STATUSES:
        raise invalid("ApplicationInstanceId", f"{row.id} is {row.status}: nothing to signal")
    by_id = {n.node_instance_id: n for n in row.node_instances}
    for i, signal in enumerate(p["NodeSignals"]):
        name = signal["NodeInstanceId"]
        node = by_id.get(name)
        if node is None:
            raise invalid(
                f"NodeSignals[{i}].NodeInstanceId",
                f"{row.id} has no node instance {name!r} (it has: {', '.join(by_id)})",
            )
        if not node.is_camera:
            raise invalid(
                f"NodeSignals[{i}].NodeInstanceId", f"{name!r} is not a camera stream node"
            )
        node.desired_state = "PAUSED" if signal["Signal"] == "PAUSE" else "RUNNING"
    running = sum(1 for n in row.node_instances if n.is_camera and n.desired_state == "RUNNING")
    limit = call.env.settings.limits.camera_streams_per_application
    if running > limit:
        raise QuotaExceeded(
            f"{running} camera streams would run; an application runs at most {limit}",
            "panorama-camera-streams",
            resource_type="applicationInstance",
            resource_id=row.id,
        )
    row.updated = call.now
    return {"ApplicationInstanceId": row.id}


def remove_application_instance(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    row = get_instance(call, p["ApplicationInstanceId"])
    set_status(row, "remove", call.now)
    return {}
