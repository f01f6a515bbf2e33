"""Our validator against the published JSON schemas, case by case; then semantic cases.

Structural: every document of spec_corpus.STRUCTURAL_CASES gets jsonschema's verdict and
ours; they must agree, and for a broken document our errors must include the path that
was broken (an error at that path or inside it: a oneOf branch may be reported at the
discriminating field below it).

Semantic: schema-valid applications (graph + packages + overrides, written to tmp_path)
that are wrong as a whole; validate_application must report an error at the given path,
and the unbroken base application must pass.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from spec_corpus import (
    GRAPH,
    NV_ACCELERATORS,
    NV_ACCELERATORS_PATH,
    OVERRIDES,
    PACKAGE,
    STRUCTURAL_CASES,
    Case,
    edit,
)
from spec_support import at_or_below, describe, schema_available, schema_errors

from panoptes.spec import DirectoryPackages, validate_application, validate_document

pytestmark = pytest.mark.skipif(not schema_available(), reason="published schemas not found")


def test_corpus_size_and_spread():
    kinds = {c.kind for c in STRUCTURAL_CASES}
    assert kinds == {
        "nodeGraph",
        "nodeGraphOverrides",
        "nodePackage",
        "nodePackageOverrides",
        "assetDescriptor",
    }
    for kind in kinds:
        cases = [c for c in STRUCTURAL_CASES if c.kind == kind]
        assert any(c.path is None for c in cases) and any(c.path for c in cases), kind
    assert len(STRUCTURAL_CASES) >= 60
    assert len({c.id for c in STRUCTURAL_CASES}) == len(STRUCTURAL_CASES)


@pytest.mark.parametrize("case", STRUCTURAL_CASES, ids=lambda c: c.id)
def test_corpus_labels_match_published_schema(case: Case):
    """Guards the corpus itself: a case labelled invalid must be invalid per the schema."""
    assert bool(schema_errors(case.doc, case.kind)) == (case.path is not None)


@pytest.mark.parametrize("case", STRUCTURAL_CASES, ids=lambda c: c.id)
def test_verdict_agrees_with_published_schema(case: Case):
    schema_ok = not schema_errors(case.doc, case.kind)
    report = validate_document(case.doc)
    assert report.ok == schema_ok, (
        f"jsonschema says {'valid' if schema_ok else 'invalid'}; ours:\n{describe(report)}"
    )
    if case.path is not None:
        paths = [p.path for p in report.errors]
        assert any(at_or_below(p, case.path) for p in paths), (
            f"broke {case.path}; our errors:\n{describe(report)}"
        )


@pytest.mark.parametrize("case", STRUCTURAL_CASES, ids=lambda c: c.id)
def test_verdict_with_explicit_kind(case: Case):
    report = validate_document(case.doc, kind=case.kind)
    assert report.ok == (case.path is None), describe(report)


@pytest.mark.parametrize(
    ("doc", "kind"),
    [(GRAPH, "nodePackage"), (PACKAGE, "nodeGraph"), (OVERRIDES, "assetDescriptor")],
    ids=["graph-as-package", "package-as-graph", "overrides-as-descriptor"],
)
def test_wrong_explicit_kind_is_an_error(doc, kind):
    assert not validate_document(doc, kind=kind).ok


STRUCTURAL_CASES_BY_ID = {c.id: c for c in STRUCTURAL_CASES}


def test_problems_carry_message_and_severity():
    report = validate_document(STRUCTURAL_CASES_BY_ID["graph-package-version-1"].doc)
    errs = [p for p in report.errors if p.path == "nodeGraph.packages[0].version"]
    assert errs, describe(report)
    assert errs[0].message and errs[0].severity == "error"
    assert sorted(map(str, report.problems)) == sorted(map(str, report.errors + report.warnings))


def test_nv_accelerators_is_a_deliberate_deviation():
    # The published schema refuses it ...
    assert schema_errors(NV_ACCELERATORS)
    # ... we accept it with exactly one warning at the requirement.
    report = validate_document(NV_ACCELERATORS)
    assert report.ok, describe(report)
    assert report.errors == []
    assert len(report.warnings) == 1, describe(report)
    assert at_or_below(report.warnings[0].path, NV_ACCELERATORS_PATH), describe(report)
    assert report.warnings[0].severity == "warning"


def test_nv_accelerators_with_a_bad_device_type_is_still_an_error():
    doc = edit(
        NV_ACCELERATORS,
        lambda d: d["nodePackage"]["assets"][0]["implementations"][0]["requirements"][0][
            "nvAccelerators"
        ][0].__setitem__("deviceType", "cuda"),
    )
    report = validate_document(doc)
    assert not report.ok, describe(report)
    assert any(at_or_below(p.path, NV_ACCELERATORS_PATH) for p in report.errors)


# ============================================================= semantic (whole app)


def write_packages(root: Path, packages: list[dict]) -> DirectoryPackages:
    for pkg in packages:
        body = pkg["nodePackage"]
        folder = root / "packages" / f"123456789012-{body['name']}-{body['version']}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text(json.dumps(pkg, indent=2), encoding="utf-8")
    return DirectoryPackages(root / "packages")


@dataclass(frozen=True)
class App:
    graph: dict
    overrides: dict | None
    packages: list[dict]


BASE = App(GRAPH, OVERRIDES, [PACKAGE])


def _cameras(n: int) -> Callable[[Any], None]:
    def fn(d: Any) -> None:
        o = d.overrides["nodeGraphOverrides"]
        o["packages"] = [{"name": f"123456789012::cam{i}", "version": "1.0"} for i in range(n)]
        o["nodes"] = [
            {
                "name": f"cam{i}",
                "interface": f"123456789012::cam{i}.cam{i}",
                "launch": "onAppStart" if i == 0 else "onSignal",
            }
            for i in range(n)
        ] + [o["nodes"][1]]
        o["nodeOverrides"][0]["with"] = [{"name": f"cam{i}"} for i in range(n)]

    return fn


def _app_edit(fn: Callable[[Any], None]) -> App:
    import copy

    app = App(copy.deepcopy(GRAPH), copy.deepcopy(OVERRIDES), copy.deepcopy([PACKAGE]))
    fn(app)
    return app


def g(d: App) -> dict:
    return d.graph["nodeGraph"]


def o(d: App) -> dict:
    return d.overrides["nodeGraphOverrides"]


def iface(d: App) -> dict:
    return d.packages[0]["nodePackage"]["interfaces"][0]


SEMANTIC_CASES: list[tuple[str, Callable[[App], None], str]] = [
    (
        "edge-to-missing-node",
        lambda d: g(d)["edges"][1].__setitem__("consumer", "ghost_node.video_in"),
        "nodeGraph.edges[1].consumer",
    ),
    (
        "edge-from-missing-parameter-node",
        lambda d: g(d)["edges"][3].__setitem__("producer", "ghost_param"),
        "nodeGraph.edges[3].producer",
    ),
    (
        "edge-to-missing-port",
        lambda d: g(d)["edges"][3].__setitem__("consumer", "code_node.no_such_port"),
        "nodeGraph.edges[3].consumer",
    ),
    (
        "edge-into-an-output-port",
        lambda d: g(d)["edges"][0].__setitem__("consumer", "code_node.video_out"),
        "nodeGraph.edges[0].consumer",
    ),
    (
        "edge-from-an-input-port",
        lambda d: g(d)["edges"][1].__setitem__("producer", "code_node.video_in"),
        "nodeGraph.edges[1].producer",
    ),
    (
        "media-into-float32",
        lambda d: g(d)["edges"][2].__setitem__("producer", "camera_node.video_out"),
        "nodeGraph.edges[2]",
    ),
    (
        "int32-parameter-into-float32-input",
        lambda d: g(d)["edges"][2].__setitem__("producer", "batch"),
        "nodeGraph.edges[2]",
    ),
    (
        "parameter-into-media-input",
        lambda d: g(d)["edges"][0].__setitem__("producer", "region"),
        "nodeGraph.edges[0]",
    ),
    # The HDMI sink's only input is left unfed (see the report: an unfed business-logic
    # media input is accepted by AWS for the inbound_network sample, so the sink is used).
    ("unfed-media-input-of-hdmi-sink", lambda d: g(d)["edges"].pop(1), "nodeGraph.nodes[6]"),
    ("unfed-int32-input-without-default", lambda d: g(d)["edges"].pop(3), "nodeGraph.nodes[0]"),
    (
        "duplicate-node-name",
        lambda d: g(d)["nodes"].append({"name": "region", "interface": "string", "value": "x"}),
        "nodeGraph.nodes[7]",
    ),
    (
        "interface-of-unlisted-package",
        lambda d: g(d)["nodes"][0].__setitem__("interface", "123456789012::OTHER_CODE.interface"),
        "nodeGraph.nodes[0].interface",
    ),
    (
        "interface-not-in-package",
        lambda d: g(d)["nodes"][0].__setitem__("interface", "123456789012::APP_CODE.nope"),
        "nodeGraph.nodes[0].interface",
    ),
    (
        "unknown-builtin-interface",
        lambda d: g(d)["nodes"][5].__setitem__(
            "interface", "panorama::abstract_rtsp_media_source.rtsp_v2_interface"
        ),
        "nodeGraph.nodes[5].interface",
    ),
    (
        "package-version-not-in-packages-dir",
        lambda d: g(d)["packages"][0].__setitem__("version", "2.0"),
        "nodeGraph.packages[0]",
    ),
    (
        "int32-value-2^31",
        lambda d: g(d)["nodes"][2].__setitem__("value", 2**31),
        "nodeGraph.nodes[2].value",
    ),
    (
        "int32-value-below-min",
        lambda d: g(d)["nodes"][2].__setitem__("value", -(2**31) - 1),
        "nodeGraph.nodes[2].value",
    ),
    (
        "float32-value-1e39",
        lambda d: g(d)["nodes"][1].__setitem__("value", 1e39),
        "nodeGraph.nodes[1].value",
    ),
    (
        "override-of-non-overridable-node",
        lambda d: (
            o(d)["nodes"].append({"name": "batch_override", "interface": "int32", "value": 4}),
            o(d)["nodeOverrides"].append(
                {"replace": "batch", "with": [{"name": "batch_override"}]}
            ),
        ),
        "nodeGraphOverrides.nodeOverrides[2].replace",
    ),
    (
        "override-of-missing-node",
        lambda d: o(d)["nodeOverrides"][1].__setitem__("replace", "ghost"),
        "nodeGraphOverrides.nodeOverrides[1].replace",
    ),
    (
        "override-with-undefined-node",
        lambda d: o(d)["nodeOverrides"][1]["with"][0].__setitem__("name", "nowhere"),
        "nodeGraphOverrides.nodeOverrides[1].with[0]",
    ),
    (
        "override-changes-parameter-type",
        lambda d: o(d)["nodes"][1].update({"interface": "string", "value": "0.7"}),
        "nodeGraphOverrides.nodeOverrides[1].with[0]",
    ),
    (
        "override-mandatory-node-not-replaced",
        lambda d: o(d)["nodeOverrides"].pop(0),
        "nodeGraph.nodes[5]",
    ),
    (
        "no-overrides-for-mandatory-node",
        lambda d: object.__setattr__(d, "overrides", None),
        "nodeGraph.nodes[5]",
    ),
    (
        "rule-container-port-not-declared",
        lambda d: o(d)["networkRoutingRules"][0].__setitem__("containerPort", 9090),
        "nodeGraphOverrides.networkRoutingRules[0].containerPort",
    ),
    (
        "rule-for-missing-node",
        lambda d: o(d)["networkRoutingRules"][0].__setitem__("node", "ghost"),
        "nodeGraphOverrides.networkRoutingRules[0].node",
    ),
    (
        "rule-host-port-7000",
        lambda d: o(d)["networkRoutingRules"][0].__setitem__("hostPort", 7000),
        "nodeGraphOverrides.networkRoutingRules[0].hostPort",
    ),
    (
        "rule-host-port-9001",
        lambda d: o(d)["networkRoutingRules"][0].__setitem__("hostPort", 9001),
        "nodeGraphOverrides.networkRoutingRules[0].hostPort",
    ),
    (
        "rule-in-graph-host-port-7000",
        lambda d: g(d).__setitem__(
            "networkRoutingRules", [{"node": "code_node", "containerPort": 80, "hostPort": 7000}]
        ),
        "nodeGraph.networkRoutingRules[0].hostPort",
    ),
    (
        "two-rules-same-host-port",
        lambda d: (
            iface(d)["network"]["inboundPorts"].append({"port": 443}),
            o(d)["networkRoutingRules"].append(
                {"node": "code_node", "containerPort": 443, "hostPort": 8080}
            ),
        ),
        "nodeGraphOverrides.networkRoutingRules[1]",
    ),
    # The 8-stream cap is per application (several camera nodes may add up), so an error
    # on the nodeOverrides list is as precise as one on the entry that expands to 9.
    ("nine-cameras-for-one-camera-node", _cameras(9), "nodeGraphOverrides.nodeOverrides"),
]

VALID_VARIANTS: list[tuple[str, Callable[[App], None]]] = [
    ("base", lambda d: None),
    ("eight-cameras-for-one-camera-node", _cameras(8)),
    ("two-cameras-onAppStart-and-onSignal", _cameras(2)),
    ("int32-max", lambda d: g(d)["nodes"][2].__setitem__("value", 2**31 - 1)),
    ("int32-min", lambda d: g(d)["nodes"][2].__setitem__("value", -(2**31))),
    ("int32-value-3.0", lambda d: g(d)["nodes"][2].__setitem__("value", 3.0)),
    ("float32-max", lambda d: g(d)["nodes"][1].__setitem__("value", 3.4028235e38)),
    ("host-port-8000", lambda d: o(d)["networkRoutingRules"][0].__setitem__("hostPort", 8000)),
    ("host-port-9000", lambda d: o(d)["networkRoutingRules"][0].__setitem__("hostPort", 9000)),
    ("no-routing-rules", lambda d: o(d).pop("networkRoutingRules")),
    (
        "rule-in-graph-instead-of-overrides",
        lambda d: g(d).__setitem__("networkRoutingRules", o(d).pop("networkRoutingRules")),
    ),
    ("unfed-input-with-default", lambda d: g(d)["edges"].pop(2)),  # threshold has a default
    (
        "not-mandatory-camera-without-overrides",
        lambda d: (
            g(d)["nodes"][5].pop("overrideMandatory"),
            object.__setattr__(d, "overrides", None),
        ),
    ),
]


def _assert_schema_valid(app: App) -> None:
    assert schema_errors(app.graph) == []
    if app.overrides is not None:
        assert schema_errors(app.overrides) == []
    for pkg in app.packages:
        assert schema_errors(pkg) == []


@pytest.mark.parametrize(("name", "fn", "want"), SEMANTIC_CASES, ids=[c[0] for c in SEMANTIC_CASES])
def test_semantic_error(tmp_path: Path, name: str, fn, want: str):
    app = _app_edit(fn)
    _assert_schema_valid(app)  # the fault is semantic only
    # Checked as deployments: without overrides the deploy-time duties still apply.
    report = validate_application(
        app.graph, app.overrides, write_packages(tmp_path, app.packages), deployment=True
    )
    assert not report.ok, f"{name}: accepted"
    assert any(at_or_below(p.path, want) for p in report.errors), describe(report)


@pytest.mark.parametrize(("name", "fn"), VALID_VARIANTS, ids=[c[0] for c in VALID_VARIANTS])
def test_semantic_valid(tmp_path: Path, name: str, fn):
    app = _app_edit(fn)
    _assert_schema_valid(app)
    report = validate_application(app.graph, app.overrides, write_packages(tmp_path, app.packages))
    assert report.ok, describe(report)


def test_missing_mandatory_override_is_a_warning_while_developing(tmp_path: Path):
    # The same app as "no-overrides-for-mandatory-node", validated without deploying
    # (panoptes manifest validate graph.json): the camera is chosen later.
    app = _app_edit(lambda d: object.__setattr__(d, "overrides", None))
    report = validate_application(app.graph, None, write_packages(tmp_path, app.packages))
    assert report.ok, describe(report)
    assert any(at_or_below(p.path, "nodeGraph.nodes[5]") for p in report.warnings)
