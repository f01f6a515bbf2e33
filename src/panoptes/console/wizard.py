"""The deploy wizard's logic, without HTTP: read a graph, list what it asks, write overrides.

A graph asks the deployer for a camera per overridable camera node (several
allowed), a value per overridable parameter (its decorator gives the title and the
description) and a confirmation per inbound port rule. `build_overrides` turns the
answers into the overrides document CreateApplicationInstance takes; the checks
themselves stay panoptes.spec's (one code path with the API).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from panoptes.spec import (
    PackageSource,
    Problem,
    Report,
    parse_json_text,
    validate_application,
    validate_document,
)
from panoptes.spec.models import NodeGraph, graph_from_dict
from panoptes.spec.packages import ABSTRACT_CAMERA

GRAPH_SOURCE = "graph.json"
LAUNCH_MODES = ("onAppStart", "onSignal")


@dataclass(frozen=True)
class CameraSlot:
    """An overridable camera node: the deployer picks one or more data sources for it."""

    node: str
    title: str
    description: str
    mandatory: bool


@dataclass(frozen=True)
class ParameterField:
    node: str
    type: str  # boolean, int32, float32, string
    value: Any
    title: str
    description: str
    overridable: bool


@dataclass(frozen=True)
class PortRule:
    node: str
    container_port: int
    host_port: int | None
    title: str


@dataclass(frozen=True)
class GraphForm:
    cameras: tuple[CameraSlot, ...] = ()
    parameters: tuple[ParameterField, ...] = ()
    ports: tuple[PortRule, ...] = ()


@dataclass(frozen=True)
class CameraChoice:
    """A registered camera (a MEDIA_SOURCE node of the account) picked for a slot."""

    package: str
    version: str
    interface: str  # the camera node's interface name (NodeName at registration)
    launch: str = "onAppStart"


@dataclass
class Checked:
    """A graph text read and checked: the document (when JSON), the findings, the form."""

    doc: dict[str, Any] | None
    report: Report
    form: GraphForm | None = None
    problems: list[dict[str, str]] = field(default_factory=list)


def problem_dict(p: Problem) -> dict[str, str]:
    return {"path": p.path, "message": p.message, "hint": p.hint, "severity": p.severity}


def parse_text(text: str) -> tuple[Any, Report]:
    """JSON from the textarea; a syntax error names its line and column."""
    report = Report()
    if not text.strip():
        report.error("$", "is empty", "paste the application's graph.json or upload the file")
        return None, report
    return parse_json_text(text, report), report


def check_graph(text: str, packages: PackageSource | None) -> Checked:
    """What the wizard shows while the user types: every problem at its JSON path.

    Deploy-time duties (cameras to choose, mandatory overrides) are the wizard's next
    step, so they are not reported here (``deployment=False``).
    """
    doc, report = parse_text(text)
    if doc is None:
        return Checked(None, report, None, [problem_dict(p) for p in report])
    report = validate_application(doc, None, packages, deployment=False, graph_source=GRAPH_SOURCE)
    form = graph_form(graph_from_dict(doc)) if validate_document(doc, "nodeGraph").ok else None
    return Checked(doc, report, form, [problem_dict(p) for p in report])


def _title(decorator: Any, fallback: str) -> tuple[str, str]:
    if decorator is None:
        return fallback, ""
    return decorator.title or fallback, decorator.description or ""


def graph_form(graph: NodeGraph) -> GraphForm:
    cameras, params = [], []
    for node in graph.nodes:
        if node.is_parameter:
            title, desc = _title(node.decorator, node.name)
            params.append(
                ParameterField(node.name, node.interface, node.value, title, desc, node.overridable)
            )
        elif node.package == ABSTRACT_CAMERA or (node.overridable and _is_camera(graph, node)):
            title, desc = _title(node.decorator, node.name)
            cameras.append(CameraSlot(node.name, title, desc, node.override_mandatory))
    ports = [
        PortRule(r.node, r.container_port, r.host_port, _title(r.decorator, f"{r.node} port")[0])
        for r in graph.routing_rules
    ]
    return GraphForm(tuple(cameras), tuple(params), tuple(ports))


def _is_camera(graph: NodeGraph, node: Any) -> bool:
    # A camera node is the producer of a media edge into a code node's input; without
    # package interfaces at hand, its output port being video_out is the sign.
    return any(e.producer == f"{node.name}.video_out" for e in graph.edges)


# --- answers -> overrides ---------------------------------------------------------------


def _typed(field_: ParameterField, raw: str) -> Any:
    if field_.type == "boolean":
        if raw.lower() in ("true", "1", "yes", "on"):
            return True
        if raw.lower() in ("false", "0", "no", "off", ""):
            return False
        raise ValueError("is not a boolean: use true or false")
    if field_.type == "int32":
        value = int(raw)
        if not -(2**31) <= value < 2**31:
            raise ValueError("is outside the 32-bit integer range")
        return value
    if field_.type == "float32":
        return float(raw)
    return raw


def build_overrides(
    account: str,
    form: GraphForm,
    cameras: dict[str, list[CameraChoice]],
    values: dict[str, str],
    open_ports: set[tuple[str, int]],
) -> tuple[dict[str, Any] | None, Report]:
    """The overrides document for the answers, or the problems naming each form field."""
    report = Report()
    nodes: list[dict[str, Any]] = []
    packages: dict[tuple[str, str], dict[str, str]] = {}
    replacements: list[dict[str, Any]] = []
    taken: set[str] = set()
    for slot in form.cameras:
        chosen = cameras.get(slot.node, [])
        if not chosen:
            if slot.mandatory:
                report.error(f"cameras.{slot.node}", "choose at least one camera", "")
            continue
        with_ = []
        for cam in chosen:
            if cam.launch not in LAUNCH_MODES:
                report.error(f"cameras.{slot.node}", f"unknown launch mode {cam.launch!r}")
                continue
            name = cam.interface
            while name in taken:
                name += "_"
            taken.add(name)
            nodes.append(
                {
                    "name": name,
                    "interface": f"{account}::{cam.package}.{cam.interface}",
                    "launch": cam.launch,
                }
            )
            packages[(cam.package, cam.version)] = {
                "name": f"{account}::{cam.package}",
                "version": cam.version,
            }
            with_.append({"name": name})
        replacements.append({"replace": slot.node, "with": with_})
    for param in form.parameters:
        if not param.overridable or param.node not in values:
            continue
        try:
            value = _typed(param, values[param.node].strip())
        except ValueError as exc:
            msg = str(exc) if "is " in str(exc) else f"is not a {param.type}"
            report.error(f"parameters.{param.node}", msg, f"enter a {param.type} value")
            continue
        if value == param.value:
            continue  # the graph's own value: nothing to override
        name = f"{param.node}_override"
        nodes.append({"name": name, "interface": param.type, "value": value})
        replacements.append({"replace": param.node, "with": [{"name": name}]})
    rules = [
        {"node": r.node, "containerPort": r.container_port, "hostPort": r.host_port}
        for r in form.ports
        if (r.node, r.container_port) in open_ports
    ]
    if not report.ok:
        return None, report
    doc: dict[str, Any] = {
        "nodeGraphOverrides": {
            "envelopeVersion": "2021-01-01",
            "packages": list(packages.values()),
            "nodes": nodes,
            "nodeOverrides": replacements,
        }
    }
    if rules:
        doc["nodeGraphOverrides"]["networkRoutingRules"] = rules
    return doc, report


def answers_from_overrides(doc: Any) -> tuple[dict[str, list[str]], dict[str, str]]:
    """(camera package names per slot, parameter values) of an instance's overrides.

    Replace and clone start from what the instance was deployed with.
    """
    cameras: dict[str, list[str]] = {}
    values: dict[str, str] = {}
    try:
        o = doc["nodeGraphOverrides"]
        by_name = {n["name"]: n for n in o.get("nodes", [])}
        for rule in o.get("nodeOverrides", []):
            for w in rule.get("with", []):
                node = by_name.get(w["name"])
                if node is None:
                    continue
                if "value" in node:
                    values[rule["replace"]] = as_text(node["value"])
                elif "::" in node.get("interface", ""):
                    package = node["interface"].split("::", 1)[1].split(".", 1)[0]
                    cameras.setdefault(rule["replace"], []).append(package)
    except (KeyError, TypeError, AttributeError):
        return {}, {}
    return cameras, values


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
