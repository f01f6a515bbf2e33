"""What a user reads when a manifest is wrong: the path, the reason, the fix."""

from __future__ import annotations

from panoptes.spec import validate_document
from panoptes.spec.problems import format_path


def _graph(**node: object) -> dict:
    base = {"name": "code_node", "interface": "123456789012::APP.interface"}
    base.update(node)
    return {
        "nodeGraph": {
            "envelopeVersion": "2021-01-01",
            "packages": [{"name": "123456789012::APP", "version": "1.0"}],
            "nodes": [base],
        }
    }


def test_paths_read_like_json() -> None:
    assert format_path(["nodeGraph", "edges", 2, "consumer"]) == "nodeGraph.edges[2].consumer"
    assert format_path([]) == "$"


def test_misspelled_field_suggests_the_right_one() -> None:
    report = validate_document(_graph(overideMandatory=True))
    (p,) = report.errors
    assert p.path == "nodeGraph.nodes[0].overideMandatory"
    assert "overrideMandatory" in p.hint


def test_enum_miss_suggests_the_close_value() -> None:
    report = validate_document(_graph(launch="onappstart"))
    (p,) = report.errors
    assert p.path == "nodeGraph.nodes[0].launch"
    assert "onAppStart" in p.hint


def test_all_problems_in_one_pass() -> None:
    doc = _graph(launch="never", overridable="yes")
    doc["nodeGraph"]["packages"][0]["version"] = "1"
    paths = sorted(p.path for p in validate_document(doc).errors)
    assert paths == [
        "nodeGraph.nodes[0].launch",
        "nodeGraph.nodes[0].overridable",
        "nodeGraph.packages[0].version",
    ]


def test_parameter_ranges_and_constraints_are_checked() -> None:
    doc = _graph()
    doc["nodeGraph"]["nodes"] = [
        {"name": "big", "interface": "int32", "value": 2**31},
        {"name": "huge", "interface": "float32", "value": 1e39},
        {
            "name": "level",
            "interface": "string",
            "value": "LOUD",
            "decorator": {"constraintRegex": "DEBUG|INFO|WARNING", "constraintText": "a level"},
        },
    ]
    errors = {p.path: p for p in validate_document(doc).errors}
    assert set(errors) == {
        "nodeGraph.nodes[0].value",
        "nodeGraph.nodes[1].value",
        "nodeGraph.nodes[2].value",
    }
    assert errors["nodeGraph.nodes[2].value"].hint == "a level"


def test_duplicate_node_names_are_errors() -> None:
    doc = _graph()
    doc["nodeGraph"]["nodes"].append(dict(doc["nodeGraph"]["nodes"][0]))
    (p,) = validate_document(doc).errors
    assert p.path == "nodeGraph.nodes[1].name"


def test_unknown_document_is_named() -> None:
    (p,) = validate_document({"graph": {}}).errors
    assert p.path == "$"
    assert "not a Panorama manifest" in p.message


def test_mandatory_override_needs_an_overridable_node() -> None:
    (p,) = validate_document(_graph(overrideMandatory=True)).errors
    assert p.path == "nodeGraph.nodes[0].overrideMandatory"
    assert validate_document(_graph(overrideMandatory=True, overridable=True)).ok
