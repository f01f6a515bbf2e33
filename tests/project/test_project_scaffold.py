"""init-project, create-package, add-panorama-package on real folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from project_helpers import ACCOUNT, graph_of, package_json

from panoptes.project import (
    Project,
    ProjectError,
    add_panorama_package,
    create_package,
    init_project,
)


def test_init_project_creates_panorama_layout(tmp_path: Path) -> None:
    root = init_project(tmp_path, "my-app")
    assert sorted(p.name for p in root.iterdir()) == ["assets", "graphs", "packages"]
    doc = json.loads((root / "graphs" / "my-app" / "graph.json").read_text())
    assert doc == {
        "nodeGraph": {"envelopeVersion": "2021-01-01", "packages": [], "nodes": [], "edges": []}
    }


def test_init_project_refuses_existing_folder(tmp_path: Path) -> None:
    (tmp_path / "my-app").mkdir()
    (tmp_path / "my-app" / "keep.txt").write_text("mine")
    with pytest.raises(ProjectError, match="already exists"):
        init_project(tmp_path, "my-app")
    assert (tmp_path / "my-app" / "keep.txt").read_text() == "mine"


def test_not_a_project_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ProjectError, match=r"missing assets/, graphs/, packages/"):
        Project.at(tmp_path)


def test_container_package_layout_and_graph_reference(project: Project) -> None:
    created = create_package(project, "SAMPLE_CODE", "Container", "1.0", ACCOUNT)
    folder = project.packages_dir / f"{ACCOUNT}-SAMPLE_CODE-1.0"
    assert created.path == folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "Dockerfile",
        "descriptor.json",
        "package.json",
        "src",
    ]
    pkg = package_json(folder)["nodePackage"]
    assert (pkg["name"], pkg["version"], pkg["assets"], pkg["interfaces"]) == (
        "SAMPLE_CODE",
        "1.0",
        [],
        [],
    )
    assert "runtimeDescriptor" in json.loads((folder / "descriptor.json").read_text())
    assert "COPY src /panorama" in (folder / "Dockerfile").read_text()
    graph = graph_of(project)["nodeGraph"]
    assert graph["packages"] == [{"name": f"{ACCOUNT}::SAMPLE_CODE", "version": "1.0"}]
    assert graph["nodes"] == []  # the node comes with the interface, at build-container


def test_model_package_has_model_descriptor(project: Project) -> None:
    create_package(project, "MODEL", "Model", "2.1", "210987654321")
    folder = project.packages_dir / "210987654321-MODEL-2.1"
    assert sorted(p.name for p in folder.iterdir()) == ["descriptor.json", "package.json"]
    assert "mlModelDescriptor" in json.loads((folder / "descriptor.json").read_text())
    assert graph_of(project)["nodeGraph"]["packages"] == [
        {"name": "210987654321::MODEL", "version": "2.1"}
    ]


@pytest.mark.parametrize(
    ("kind", "interface", "category"),
    [("Camera", "rtsp_interface", "media_source"), ("Datasink", "sink_interface", "media_sink")],
)
def test_camera_and_datasink_get_interface_and_node(
    project: Project, kind: str, interface: str, category: str
) -> None:
    create_package(project, "DEV", kind, "1.0", ACCOUNT)
    pkg = package_json(project.packages_dir / f"{ACCOUNT}-DEV-1.0")["nodePackage"]
    assert pkg["name"] == "DEV" and pkg["version"] == "1.0"
    assert [(i["name"], i["category"]) for i in pkg["interfaces"]] == [(interface, category)]
    assert pkg["assets"][0]["implementations"][0]["type"] == "system"
    nodes = graph_of(project)["nodeGraph"]["nodes"]
    assert nodes == [
        {
            "name": "DEV",
            "interface": f"{ACCOUNT}::DEV.{interface}",
            "overridable": False,
            "launch": "onAppStart",
        }
    ]


def test_create_package_updates_every_graph_folder(project: Project) -> None:
    second = project.graphs_dir / "other"
    second.mkdir()
    (second / "graph.json").write_text((project.graphs_dir / "app" / "graph.json").read_text())
    create_package(project, "CODE", "Container", "1.0", ACCOUNT)
    for g in ("app", "other"):
        doc = json.loads((project.graphs_dir / g / "graph.json").read_text())
        assert doc["nodeGraph"]["packages"] == [{"name": f"{ACCOUNT}::CODE", "version": "1.0"}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("CODE", "Lambda", "1.0", ACCOUNT), "not a package type"),
        (("CO DE", "Container", "1.0", ACCOUNT), "package name 'CO DE'"),
        (("CODE", "Container", "one", ACCOUNT), "MAJOR.MINOR"),
        (("CODE", "Container", "1.0", "42"), "12-digit"),
    ],
)
def test_create_package_rejects_bad_input(project: Project, args: tuple, message: str) -> None:
    with pytest.raises(ProjectError, match=message):
        create_package(project, *args)
    assert list(project.packages_dir.iterdir()) == []


def test_create_package_refuses_existing_package(project: Project) -> None:
    create_package(project, "CODE", "Container", "1.0", ACCOUNT)
    with pytest.raises(ProjectError, match="already exists"):
        create_package(project, "CODE", "Model", "1.0", ACCOUNT)
    assert len(graph_of(project)["nodeGraph"]["packages"]) == 1


def test_add_panorama_camera_and_sink(project: Project) -> None:
    add_panorama_package(project, "camera", "camera_node")
    add_panorama_package(project, "camera", "camera_2")
    add_panorama_package(project, "data_sink", "output_node")
    graph = graph_of(project)["nodeGraph"]
    assert graph["packages"] == [
        {"name": "panorama::abstract_rtsp_media_source", "version": "1.0"},
        {"name": "panorama::hdmi_data_sink", "version": "1.0"},
    ]
    camera, _, sink = graph["nodes"]
    assert camera["interface"] == "panorama::abstract_rtsp_media_source.rtsp_v1_interface"
    assert camera["overridable"] is True
    assert camera["decorator"]["title"] == "Camera camera_node"
    assert sink["interface"] == "panorama::hdmi_data_sink.hdmi0"
    assert sink["overridable"] is False


def test_add_panorama_package_refuses_taken_node_name(project: Project) -> None:
    add_panorama_package(project, "camera", "cam")
    before = (project.graphs_dir / "app" / "graph.json").read_bytes()
    with pytest.raises(ProjectError, match="node named 'cam' already exists"):
        add_panorama_package(project, "data_sink", "cam")
    with pytest.raises(ProjectError, match="camera or data_sink"):
        add_panorama_package(project, "speaker", "s")
    assert (project.graphs_dir / "app" / "graph.json").read_bytes() == before
