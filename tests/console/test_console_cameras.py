"""Data sources: cameras added, edited and removed in the console; snapshots; no secret shown."""

from __future__ import annotations

import cv2
import numpy as np
from console_client import ConsoleClient

PASSWORD = "cam-pass-Zq81"


def _add(console: ConsoleClient, name: str, url: str, **extra) -> object:
    fields = {"name": name, "url": url, "username": "viewer", "password": PASSWORD, **extra}
    return console.submit("/console/cameras/new", "/console/cameras/new", fields)


def _versions(stack, name: str) -> list[str]:
    nodes = stack.client().list_nodes(Category="MEDIA_SOURCE")["Nodes"]
    return sorted(n["PackageVersion"] for n in nodes if n["PackageName"] == name)


def test_a_camera_added_is_a_data_source_and_its_password_never_comes_back(stack, console):
    response = _add(console, "front-door", "rtsp://10.0.0.9:554/live", description="front door")
    assert response.status_code == 303
    assert _versions(stack, "front-door") == ["1.0"]
    listing = console.http.get("/console/cameras").text
    assert "front-door" in listing and "front door" in listing
    assert "rtsp://10.0.0.9:554/live" in listing
    assert PASSWORD not in listing and "viewer" not in listing
    edit = console.http.get("/console/cameras/front-door/edit").text
    assert PASSWORD not in edit and "10.0.0.9" not in edit


def test_a_bad_stream_url_is_refused_with_the_field(stack, console):
    response = _add(console, "cam", "http://not-rtsp/")
    assert response.status_code == 400
    assert "must be an rtsp:// or rtsps:// URL" in response.text
    assert _versions(stack, "cam") == []


def test_editing_registers_a_new_version_and_keeps_the_credentials(stack, console):
    _add(console, "yard", "rtsp://10.0.0.7/live")
    response = console.submit(
        "/console/cameras/yard/edit", "/console/cameras/yard/edit", {"description": "the yard"}
    )
    assert response.status_code == 303
    assert _versions(stack, "yard") == ["2.0"]
    kept = stack.server.console.camera_stream(stack.account, "yard", "2.0")
    assert kept == {"StreamUrl": "rtsp://10.0.0.7/live", "Username": "viewer", "Password": PASSWORD}
    assert "the yard" in console.http.get("/console/cameras").text


def test_removing_a_camera_deletes_its_package(stack, console):
    _add(console, "gone", "rtsp://10.0.0.8/live")
    response = console.submit("/console/cameras", "/console/cameras/gone/delete")
    assert response.status_code == 303
    assert _versions(stack, "gone") == []
    assert "gone" not in [p["PackageName"] for p in stack.client().list_packages()["Packages"]]


def test_the_snapshot_is_a_picture_from_the_camera(stack, console, rtsp_server):
    _add(console, "test-pattern", rtsp_server.url)
    snap = console.http.get("/console/cameras/test-pattern/snapshot.jpg")
    assert snap.status_code == 200 and snap.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(snap.content, np.uint8), cv2.IMREAD_COLOR)
    assert image.shape[:2] == (240, 320)
    assert image.std() > 10  # GStreamer's test pattern: colour bars, not a blank frame


def test_an_unreachable_camera_answers_an_error_not_a_picture(stack, console, rtsp_server):
    dead = rtsp_server.url.rsplit("/", 1)[0] + "/no-such-path"
    _add(console, "dead", dead)
    snap = console.http.get("/console/cameras/dead/snapshot.jpg")
    assert snap.status_code == 502 and "cannot read the camera stream" in snap.text
    assert PASSWORD not in snap.text
