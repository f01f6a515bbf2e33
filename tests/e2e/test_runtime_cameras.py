"""Live cameras the way a user meets them: a wrong path or password is explained in the
camera's node status (password masked), and a camera that freezes without hanging up
makes the application's ``get(timeout=...)`` raise TimeoutError, then recovers."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import appkit
import pytest

from panoptes.runtime import NOT_AVAILABLE, RUNNING, Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SECRET = "s3cr3t-pw"

TIMEOUT_APP = textwrap.dedent(
    """
    import panoramasdk

    node = panoramasdk.node()
    frames = 0
    while True:
        try:
            streams = node.inputs.video_in.get(timeout=1.0)
        except TimeoutError as exc:
            print(f"TIMEOUT after {frames} frames: {exc}", flush=True)
            continue
        frames += len(streams)
        print(f"FRAME {frames}", flush=True)
        node.outputs.video_out.put(streams)
    """
)


def _runtime(tmp: Path, uri: str) -> Runtime:
    project = appkit.build_project(tmp / "p", {"application.py": TIMEOUT_APP}, output=False)
    return appkit.start_runtime(tmp, project, {"camera_node": [uri]}, mp4=False, mjpeg_port=None)


def _with_password(url: str, path: str | None = None) -> str:
    scheme, rest = url.split("://", 1)
    if path is not None:
        rest = rest.rsplit("/", 1)[0] + "/" + path
    return f"{scheme}://admin:{SECRET}@{rest}"


def _logged(tmp: Path) -> str:
    return "".join(p.read_text(errors="replace") for p in (tmp / "out" / "logs").glob("*.log"))


def test_a_404_camera_says_why_in_its_status_with_the_password_masked(tmp_path, rtsp_server):
    uri = _with_password(rtsp_server.url, "no-such-path")
    with _runtime(tmp_path, uri) as rt:
        appkit.wait_until(
            lambda: "404" in rt.status()["camera_node"].detail,
            timeout=30,
            what="the 404 in the camera's status",
        )
        st = rt.status()["camera_node"]
        assert st.status == NOT_AVAILABLE
        assert "Server returned 404 Not Found" in st.detail, st.detail
        assert "admin:***@127.0.0.1" in st.detail, st.detail
        logs = _logged(tmp_path)
        cmdlines = [Path(f"/proc/{p.popen.pid}/cmdline").read_text() for p in rt.procs.values()]
    assert SECRET not in st.detail
    assert not [c for c in cmdlines if SECRET in c]  # not in ps either
    assert "404" in logs and SECRET not in logs  # nor in any log stream


def test_an_unreachable_camera_says_so(tmp_path):
    with _runtime(tmp_path, "rtsp://127.0.0.1:9/cam") as rt:  # port 9: nobody listens
        appkit.wait_until(
            lambda: "Connection refused" in rt.status()["camera_node"].detail,
            timeout=30,
            what="'connection refused' in the camera's status",
        )
        assert rt.status()["camera_node"].detail.startswith("cannot reach rtsp://127.0.0.1:9/cam")


def test_a_frozen_camera_times_out_get_and_recovers(tmp_path, rtsp_server):
    """The server stops sending but keeps the connection (SIGSTOP): the app's
    get(timeout=1) raises TimeoutError; once the server runs again, frames return."""
    with _runtime(tmp_path, _with_password(rtsp_server.url)) as rt:

        def frames() -> int:
            lines = [x for x in rt.app_log().splitlines() if x.startswith("FRAME ")]
            return int(lines[-1].split()[1]) if lines else 0

        def timeouts_after_frames() -> int:  # those while the camera was still connecting
            lines = [x for x in rt.app_log().splitlines() if x.startswith("TIMEOUT after ")]
            return sum(1 for x in lines if int(x.split()[2]) > 0)

        appkit.wait_until(lambda: frames() >= 15, timeout=60, what="frames before the freeze")
        assert timeouts_after_frames() == 0, rt.app_log()
        os.kill(rtsp_server.proc.pid, signal.SIGSTOP)
        try:
            appkit.wait_until(
                lambda: timeouts_after_frames() > 0, timeout=30, what="TimeoutError in get()"
            )
            frozen_at = frames()
            # The source's read times out (5 s) and it reconnects; the reason is shown.
            appkit.wait_until(
                lambda: (
                    "disconnected" in rt.status()["camera_node"].detail
                    or "cannot reach" in rt.status()["camera_node"].detail
                ),
                timeout=30,
                what="the freeze explained in the camera's status",
            )
            assert rt.status()["camera_node"].status == NOT_AVAILABLE
        finally:
            os.kill(rtsp_server.proc.pid, signal.SIGCONT)
        appkit.wait_until(
            lambda: frames() >= frozen_at + 15, timeout=90, what="frames after the camera thaws"
        )
        appkit.wait_until(
            lambda: rt.status()["camera_node"].status == RUNNING, timeout=10, what="RUNNING"
        )
        assert rt.status()["camera_node"].detail == ""
        assert rt.status()["code_node"].errors == 0, rt.app_log()
        text = rt.app_log()
    assert "TimeoutError" not in text  # caught by the app, never a crash
    assert "video_in: no new frame within 1.0 s" in text
