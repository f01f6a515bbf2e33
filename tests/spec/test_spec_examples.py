"""Every JSON example of the developer guide, completed into a whole document, is accepted.

Fixtures: tests/fixtures/spec_examples/ (README.md there maps each file to its spec lines
and says what was completed). Each file is first checked against the published schema, so
a broken fixture fails here rather than being blamed on the validator.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_support import (
    SPEC_EXAMPLES,
    at_or_below,
    describe,
    kind_of,
    load_json,
    schema_available,
    schema_errors,
)

from panoptes.spec import DirectoryPackages, validate_application, validate_document

EXAMPLE_FILES = sorted(SPEC_EXAMPLES.rglob("*.json"))
APPS = SPEC_EXAMPLES / "apps"


def _id(path: Path) -> str:
    return str(path.relative_to(SPEC_EXAMPLES))


def test_every_example_has_a_readme_row():
    readme = (SPEC_EXAMPLES / "README.md").read_text(encoding="utf-8")
    missing = [_id(p) for p in EXAMPLE_FILES if f"`{_id(p)}`" not in readme]
    assert not missing, f"fixtures without a README row: {missing}"
    assert len(EXAMPLE_FILES) >= 25


@pytest.mark.skipif(not schema_available(), reason="published schemas not found")
@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_id)
def test_example_is_valid_per_published_schema(path: Path):
    assert schema_errors(load_json(path)) == []


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_id)
def test_example_passes_validate_document(path: Path):
    doc = load_json(path)
    report = validate_document(doc)
    assert report.ok, describe(report)
    assert report.errors == []


@pytest.mark.parametrize("path", EXAMPLE_FILES, ids=_id)
def test_example_passes_validate_document_with_explicit_kind(path: Path):
    doc = load_json(path)
    report = validate_document(doc, kind=kind_of(doc))
    assert report.ok, describe(report)


# (app, graph, overrides or None, expected error path or None for "valid")
APP_CASES = [
    ("walkthrough", "aws-panorama-sample/graph.json", None, None),
    ("sample", "aws-panorama-sample/graph.json", "aws-panorama-sample/overrides.json", None),
    (
        "sample",
        "aws-panorama-sample/graph.json",
        "aws-panorama-sample/override-multicam.json",
        None,
    ),
    # camera_node is overrideMandatory: valid while developing (a warning); deploying it
    # without an override document is refused (test_sample_deployment_needs_a_camera).
    ("sample", "aws-panorama-sample/graph.json", None, None),
    ("abstract", "abstract/graph.json", None, None),
    ("debug-server", "my-app/graph.json", None, None),
    # The guide's override repeats the graph's routing rule (8080 -> code_node:80) "to
    # confirm that you want to open ports": the same rule twice is not a host port clash.
    ("debug-server", "my-app/graph.json", "my-app/override.json", None),
]


def _app_id(case) -> str:
    app, graph, overrides, want = case
    tail = f"+{Path(overrides).name}" if overrides else "+no-overrides"
    return f"{app}/{graph}{tail}" + ("" if want is None else f"->error@{want}")


@pytest.mark.parametrize("case", APP_CASES, ids=_app_id)
def test_example_application(case):
    app, graph, overrides, want = case
    graphs = APPS / app / "graphs"
    graph_doc = load_json(graphs / graph)
    overrides_doc = load_json(graphs / overrides) if overrides else None
    report = validate_application(
        graph_doc, overrides_doc, DirectoryPackages(APPS / app / "packages")
    )
    if want is None:
        assert report.ok, describe(report)
    else:
        assert not report.ok
        assert any(at_or_below(p.path, want) for p in report.errors), describe(report)


def test_every_example_graph_is_exercised_as_an_application():
    graphs = {p for p in APPS.rglob("graph.json")}
    used = {APPS / app / "graphs" / graph for app, graph, _o, _w in APP_CASES}
    assert graphs == used
    overrides = {p for p in APPS.rglob("*.json") if kind_of(load_json(p)) == "nodeGraphOverrides"}
    used_o = {APPS / app / "graphs" / o for app, _g, o, _w in APP_CASES if o}
    assert overrides == used_o


def test_sample_deployment_needs_a_camera():
    graph = load_json(APPS / "sample" / "graphs" / "aws-panorama-sample" / "graph.json")
    packages = DirectoryPackages(APPS / "sample" / "packages")
    developing = validate_application(graph, None, packages)
    assert any(at_or_below(p.path, "nodeGraph.nodes[2]") for p in developing.warnings)
    deploying = validate_application(graph, None, packages, deployment=True)
    assert any(at_or_below(p.path, "nodeGraph.nodes[2]") for p in deploying.errors)
