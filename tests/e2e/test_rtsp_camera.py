"""A camera node on a real RTSP server (GStreamer's, see rtsp_server.py): frames reach the
application, a camera that goes away and comes back is reconnected, and a wrong path is
reported against the camera."""

from __future__ import annotations

import functools
import textwrap
import time
from pathlib import Path

import appkit
import cv2
import numpy as np
import pytest

from panoptes.runtime import NOT_AVAILABLE, PAUSED, RUNNING, Runtime, Signal, make_plan
from panoptes.spec import resolve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
_until = functools.partial(appkit.wait_until, timeout=60.0)

COUNT_APP = textwrap.dedent(
    """
    import panoramasdk

    node = panoramasdk.node()
    n = 0
    while True:
        streams = node.inputs.video_in.get()
        for s in streams:
            n += 1
            h, w = s.image.shape[:2]
            print(f"FRAME {n} {s.stream_id} {w}x{h}", flush=True)
        node.outputs.video_out.put(streams)
    """
)


def _runtime(tmp: Path, uri: str) -> Runtime:
    project = appkit.build_project(tmp / "p", {"application.py": COUNT_APP})
    app = resolve(project / "graphs/app/graph.json", None, project / "packages", deployment=False)
    plan = make_plan(app, project, {"camera_node": [uri]})
    return Runtime(plan, tmp / "work", output_dir=tmp / "out", mp4=False, mjpeg_port=None)


def _frames(rt: Runtime) -> list[str]:
    return [line for line in rt.app_log().splitlines() if line.startswith("FRAME ")]


def test_rtsp_camera_delivers_frames(tmp_path, rtsp_server):
    with _runtime(tmp_path, rtsp_server.url) as rt:
        _until(lambda: len(_frames(rt)) >= 20, what=f"frames from {rtsp_server.url}")
        _until(lambda: rt.status()["camera_node"].status == RUNNING, what="RUNNING", timeout=5)
        assert rt.status()["code_node"].errors == 0, rt.app_log()
        frames = _frames(rt)
        thumb = cv2.imdecode(np.frombuffer(rt.snapshot("camera_node", 160), np.uint8), 1)
    assert all(line.split()[2:] == ["camera_node", "320x240"] for line in frames), frames[:3]
    assert thumb.shape == (120, 160, 3) and thumb.std() > 10  # the camera's picture, small


def test_rtsp_camera_reconnects_after_the_server_restarts(tmp_path, rtsp_server):
    with _runtime(tmp_path, rtsp_server.url) as rt:
        cam_log = tmp_path / "out" / "logs" / "camera_node.log"
        _until(lambda: len(_frames(rt)) >= 10, what="frames before the server goes away")
        rtsp_server.kill()
        # A killed server ends the decode loop (EOF or the 5 s read timeout); the source
        # treats that as a disconnect and retries while the server is down.
        _until(
            lambda: (
                "disconnected; reconnecting" in cam_log.read_text()
                or "stream error" in cam_log.read_text()
            ),
            timeout=30,
            what="the source to notice the disconnect",
        )
        _until(
            lambda: "Failed to get SDP description" in cam_log.read_text(),
            timeout=30,
            what="a failed retry",
        )
        _until(
            lambda: rt.status()["camera_node"].status == NOT_AVAILABLE,
            timeout=5,
            what="the camera reported not available while it is away",
        )
        before = len(_frames(rt))
        time.sleep(1.0)
        assert len(_frames(rt)) == before, "frames while the server was down"
        rtsp_server.start()
        _until(
            lambda: len(_frames(rt)) >= before + 20,
            timeout=60,
            what="frames after the server came back",
        )
        _until(lambda: rt.status()["camera_node"].status == RUNNING, what="RUNNING", timeout=5)
        assert "disconnected; reconnecting" in cam_log.read_text()
        assert rt.status()["code_node"].errors == 0, rt.app_log()
        assert rt.status()["code_node"].restarts == 0


def test_rtsp_wrong_path_is_reported_against_the_camera(tmp_path, rtsp_server):
    wrong = rtsp_server.url.rsplit("/", 1)[0] + "/no-such-path"
    with _runtime(tmp_path, wrong) as rt:
        cam_log = tmp_path / "out" / "logs" / "camera_node.log"

        def logged() -> str:
            return cam_log.read_text() if cam_log.exists() else ""

        _until(lambda: "404" in logged(), timeout=30, what="the 404 in the camera's log")
        line = next(x for x in logged().splitlines() if "404" in x)
        assert "camera_node: Failed to get SDP description: 404 Not Found" in line, line
        assert wrong in line, line
        # A live camera keeps retrying (a camera may come back), reported not available.
        _until(
            lambda: rt.status()["camera_node"].status == NOT_AVAILABLE,
            timeout=5,
            what="the camera reported not available",
        )
        assert _frames(rt) == []


TIMEOUT_APP = textwrap.dedent(
    """
    import panoramasdk

    node = panoramasdk.node()
    n = 0
    while True:
        try:
            streams = node.inputs.video_in.get(timeout=1.0)
        except TimeoutError:
            print("TIMEOUT", flush=True)
            continue
        for s in streams:
            n += 1
            print(f"FRAME {n} {s.stream_id} cached={s.is_cached}", flush=True)
        node.outputs.video_out.put(streams)
    """
)


def test_pause_stops_decoding_and_resume_restarts_it_without_restarting_the_app(
    tmp_path, rtsp_server
):
    project = appkit.build_project(tmp_path / "p", {"application.py": TIMEOUT_APP})
    app = resolve(project / "graphs/app/graph.json", None, project / "packages", deployment=False)
    plan = make_plan(app, project, {"camera_node": [rtsp_server.url]})
    rt = Runtime(plan, tmp_path / "work", output_dir=tmp_path / "out", mp4=False, mjpeg_port=None)
    with rt:
        cam_log = tmp_path / "out" / "logs" / "camera_node.log"
        _until(lambda: len(_frames(rt)) >= 10, what="frames before the pause")
        app_pid = rt.status()["code_node"].pid
        rt.signal("camera_node", Signal.PAUSE)
        _until(lambda: rt.status()["camera_node"].status == PAUSED, timeout=10, what="PAUSED")
        _until(lambda: "camera_node: paused" in cam_log.read_text(), timeout=10, what="paused")
        mark = len(rt.app_log().splitlines())
        # A paused camera yields nothing: the app's get(timeout) raises TimeoutError.
        _until(
            lambda: rt.app_log().splitlines()[mark:].count("TIMEOUT") >= 2,
            timeout=20,
            what="TimeoutError in the app while paused",
        )
        paused_frames = len(_frames(rt))
        seq = rt.rings[rt.camera_rings["camera_node"]].latest_seq
        time.sleep(1.0)
        assert rt.rings[rt.camera_rings["camera_node"]].latest_seq == seq, "decoded while paused"
        assert len(_frames(rt)) == paused_frames
        rt.signal("camera_node", Signal.RESUME)
        _until(lambda: len(_frames(rt)) >= paused_frames + 10, what="frames after the resume")
        _until(lambda: rt.status()["camera_node"].status == RUNNING, timeout=10, what="RUNNING")
        st = rt.status()["code_node"]
        assert (st.pid, st.restarts, st.errors) == (app_pid, 0, 0), rt.app_log()
        log = cam_log.read_text()
        assert "camera_node: resumed" in log and "disconnected" not in log, log
        assert all(line.endswith("cached=False") for line in _frames(rt))
