"""The runtime keeps an application going: a killed model server is restarted on the same
address (its callers carry on), and a stuck camera source is killed by the watchdog and
restarted (frames flow again)."""

from __future__ import annotations

import os
import signal
import textwrap
from pathlib import Path

import appkit
import pytest

from panoptes.media import ring as ringmod
from panoptes.media import source as source_mod
from panoptes.models import shm as model_shm
from panoptes.models.server import server_tag
from panoptes.runtime import RUNNING, Runtime

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _runtime(tmp: Path, project: Path, cameras: dict[str, list[str]], **kw) -> Runtime:
    return appkit.start_runtime(tmp, project, cameras, **kw)


def _until(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    appkit.wait_until(predicate, timeout, what)


def _count(path: Path) -> int:
    try:
        return int(path.read_text() or 0)
    except (OSError, ValueError):
        return 0


CALLER_APP = textwrap.dedent(
    """
    import os
    import time

    import numpy as np
    import panoramasdk

    node = panoramasdk.node()
    x = np.zeros((1, 3, 224, 224), np.float32)
    n = 0
    while True:
        try:
            node.call({"data": x}, "model_node")
        except Exception as exc:
            print(f"call failed: {type(exc).__name__}: {exc}", flush=True)
            time.sleep(0.2)
            continue
        n += 1
        with open("/opt/aws/panorama/storage/calls.tmp", "w") as f:
            f.write(str(n))
        os.replace("/opt/aws/panorama/storage/calls.tmp", "/opt/aws/panorama/storage/calls")
    """
)


def test_a_killed_model_server_is_restarted_and_calls_resume(
    tmp_path, clip, squeezenet, model_cache
):
    project = appkit.build_project(
        tmp_path / "p", {"application.py": CALLER_APP}, model=squeezenet, output=False
    )
    calls = tmp_path / "storage" / "code_node" / "calls"
    rt = _runtime(tmp_path, project, {"camera_node": [str(clip)]}, model_cache=model_cache)
    with rt:
        _until(lambda: _count(calls) >= 5, what="the first calls")
        old = rt.status()["model_node"]
        os.kill(old.pid, signal.SIGKILL)
        _until(lambda: rt.status()["model_node"].errors >= 1, what="the crash to be seen")

        def restarted() -> bool:
            st = rt.status()["model_node"]
            return st.restarts >= 1 and st.status == RUNNING and st.pid != old.pid

        _until(restarted, what="the model server's restart")
        before = _count(calls)
        _until(lambda: _count(calls) >= before + 5, what="calls after the restart")
        status = rt.status()
        tag = server_tag(f"{rt.instance_id}-model_node")
        rings = list(rt.rings)
        assert status["code_node"].errors == 0, rt.app_log()
        # The client reconnected on its own: the application never saw an error.
        assert "call failed" not in rt.app_log(), rt.app_log()
        assert "exited with code -9" in rt.app_log("model_node")
    assert status["model_node"].restarts == 1 and status["model_node"].errors == 1
    # Stopping the app (SIGTERM) let it unlink its tensor slot: no resource-tracker
    # "leaked shared_memory" warning in the application's console log.
    assert "leaked shared_memory" not in rt.app_log(), rt.app_log()
    # Nothing left in /dev/shm: neither the tensor slots nor the frame rings.
    assert list(model_shm.SHM_DIR.glob(model_shm.segment_prefix(tag) + "*")) == []
    assert [r for r in rings if (model_shm.SHM_DIR / r).exists()] == []
    assert ringmod.sweep() == []


COUNTER_APP = textwrap.dedent(
    """
    import os

    import panoramasdk

    node = panoramasdk.node()
    n = 0
    while True:
        streams = node.inputs.video_in.get()
        n += len(streams)
        with open("/opt/aws/panorama/storage/frames.tmp", "w") as f:
            f.write(str(n))
        os.replace("/opt/aws/panorama/storage/frames.tmp", "/opt/aws/panorama/storage/frames")
    """
)


def test_a_stuck_source_is_killed_by_the_watchdog_and_frames_flow_again(
    tmp_path, long_clip, monkeypatch
):
    hang_after = 15
    monkeypatch.setenv(source_mod.HANG_AFTER_FRAMES_ENV, str(hang_after))
    project = appkit.build_project(tmp_path / "p", {"application.py": COUNTER_APP}, output=False)
    frames = tmp_path / "storage" / "code_node" / "frames"
    rt = _runtime(
        tmp_path, project, {"camera_node": [str(long_clip)]}, loop=True, liveness_deadline=2.0
    )
    with rt:
        _until(lambda: _count(frames) >= hang_after, what="the first frames")
        _until(lambda: rt.status()["camera_node"].restarts >= 1, what="the watchdog's restart")
        # The restarted source delivers again (and, with the hook, hangs again later).
        _until(lambda: _count(frames) > hang_after + 5, what="frames after the restart")
        _until(
            lambda: "frames again after a gap" in rt.app_log("camera_node"),
            what="the end of the gap to be logged",
        )
        status = rt.status()
        log = rt.app_log("camera_node")
    assert status["code_node"].errors == 0, rt.app_log()
    assert "source stuck: no heartbeat" in log
    # One line when a gap starts, one when it ends; never one per restart attempt.
    assert log.count("source stuck") <= log.count("frames again after a gap") + 1
