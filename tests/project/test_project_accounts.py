"""import-application: account ids rewritten only where they are account ids."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from panoptes.project import Project, ProjectError, import_application

OLD, NEW = "123456789012", "210987654321"


def copy_sample(sample: Path, dst: Path) -> Path:
    shutil.copytree(sample, dst)
    for p in [dst, *dst.rglob("*")]:  # the reference copy is read-only
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dst


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def swap(value: object) -> object:
    """Expected content: OLD:: prefixes of names/interfaces swapped, nothing else."""
    if isinstance(value, dict):
        return {
            k: (
                NEW + v[len(OLD) :]
                if k in ("name", "interface") and isinstance(v, str) and v.startswith(OLD + "::")
                else swap(v)
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [swap(v) for v in value]
    return value


def test_sample_app_moves_to_new_account_and_nothing_else_changes(
    sample_app: Path, tmp_path: Path
) -> None:
    root = copy_sample(sample_app, tmp_path / "sample")
    graph = root / "graphs" / "my-app" / "graph.json"
    doc = json.loads(graph.read_text())
    # Traps for a blind string replace: a parameter value and a description holding OLD.
    doc["nodeGraph"]["nodes"].append({"name": "limit", "interface": "int32", "value": int(OLD)})
    doc["nodeGraph"]["nodes"][0]["decorator"] = {"title": "t", "description": f"built by {OLD}"}
    graph.write_text(json.dumps(doc, indent=4))
    before = snapshot(root)

    result = import_application(Project.at(root), NEW)

    assert (result.old, result.new) == (OLD, NEW)
    after = snapshot(root)
    renamed = {
        f"packages/{OLD}-{n}-1.0": f"packages/{NEW}-{n}-1.0"
        for n in ("SAMPLE_CODE", "SQUEEZENET_PYTORCH")
    }
    assert sorted(p.name for p in (root / "packages").iterdir()) == sorted(
        Path(v).name for v in renamed.values()
    )
    rewritten = {
        "graphs/my-app/graph.json",
        "graphs/my-app/override.json",
        "graphs/my-app/override-multicam.json",
    }
    assert {str(p.relative_to(root)) for p in result.files} == rewritten
    for rel, data in before.items():
        new_rel = rel
        for old_dir, new_dir in renamed.items():
            new_rel = new_rel.replace(old_dir, new_dir)
        if rel in rewritten:
            assert json.loads(after[new_rel]) == swap(json.loads(data)), rel
        else:
            assert after[new_rel] == data, f"{rel} must not change"
    assert set(after) == {
        next((r.replace(o, n) for o, n in renamed.items() if o in r), r) for r in before
    }
    new_graph = json.loads(graph.read_text())["nodeGraph"]
    assert new_graph["nodes"][-1]["value"] == int(OLD)
    assert new_graph["nodes"][0]["decorator"]["description"] == f"built by {OLD}"
    assert graph.read_text().endswith("}\n") and '\n    "nodeGraph"' in graph.read_text()


def test_every_graph_folder_is_rewritten(sample_app: Path, tmp_path: Path) -> None:
    root = copy_sample(sample_app, tmp_path / "sample")
    shutil.copytree(root / "graphs" / "my-app", root / "graphs" / "second-app")
    result = import_application(Project.at(root), NEW)
    assert len(result.files) == 6
    for f in (root / "graphs").rglob("*.json"):
        assert f"{OLD}::" not in f.read_text(), f


def test_json_error_stops_before_any_change(sample_app: Path, tmp_path: Path) -> None:
    root = copy_sample(sample_app, tmp_path / "sample")
    bad = root / "graphs" / "my-app" / "override.json"
    bad.write_text(bad.read_text().replace('"nodes": [', '"nodes": [,', 1))
    before = snapshot(root)
    with pytest.raises(ProjectError, match=r"override\.json:3:19: invalid JSON"):
        import_application(Project.at(root), NEW)
    assert snapshot(root) == before


def test_several_accounts_need_from_account(sample_app: Path, tmp_path: Path) -> None:
    root = copy_sample(sample_app, tmp_path / "sample")
    pkg = root / "packages" / f"{OLD}-SQUEEZENET_PYTORCH-1.0"
    pkg.rename(root / "packages" / "999999999999-SQUEEZENET_PYTORCH-1.0")
    with pytest.raises(ProjectError, match="several account ids: 123456789012, 999999999999"):
        import_application(Project.at(root), NEW)
    result = import_application(Project.at(root), NEW, old="999999999999")
    assert result.folders == [
        ("999999999999-SQUEEZENET_PYTORCH-1.0", f"{NEW}-SQUEEZENET_PYTORCH-1.0")
    ]
    assert result.files == []  # the graphs never mentioned 999999999999
    assert (root / "packages" / f"{OLD}-SAMPLE_CODE-1.0").is_dir()


def test_same_account_and_collisions(sample_app: Path, tmp_path: Path) -> None:
    root = copy_sample(sample_app, tmp_path / "sample")
    before = snapshot(root)
    assert import_application(Project.at(root), OLD).notes[-1].endswith("nothing to do")
    assert snapshot(root) == before
    (root / "packages" / f"{NEW}-SAMPLE_CODE-1.0").mkdir()
    with pytest.raises(ProjectError, match="already exists"):
        import_application(Project.at(root), NEW, old=OLD)
    assert snapshot(root) == before
    with pytest.raises(ProjectError, match="12-digit"):
        import_application(Project.at(root), "abc")
