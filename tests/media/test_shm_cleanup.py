"""No /dev/shm leaks across restarts: a runtime killed with SIGKILL leaves its frame rings
and the readers' wake-up FIFOs behind, and the next runtime's start removes them; a runtime
that stops in order leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from appkit import wait_until as until

from panoptes.media.ring import PREFIX
from panoptes.shmem import SHM_DIR, pid_alive

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

E2E = Path(__file__).parents[1] / "e2e"
# One application instance with a looping camera and an app reading it: the rings, the
# source and the app's reader FIFO all exist while it runs.
RUN = r"""
import sys, textwrap, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import appkit
from panoptes.runtime import Runtime, make_plan
from panoptes.spec import resolve

tmp = Path(sys.argv[2])
app_py = textwrap.dedent('''
    import panoramasdk
    node = panoramasdk.node()
    while True:
        node.outputs.video_out.put(node.inputs.video_in.get())
''')
project = appkit.build_project(tmp / "p", {"application.py": app_py})
clip = appkit.make_clip(tmp / "clip.mp4", frames=30)
app = resolve(project / "graphs/app/graph.json", None, project / "packages", deployment=False)
plan = make_plan(app, project, {"camera_node": [str(clip)]})
rt = Runtime(plan, tmp / "work", output_dir=tmp / "out", loop=True, mp4=False,
             mjpeg_port=None).start()
deadline = time.monotonic() + 90
while rt.status()["camera_node"].frames < 10 and time.monotonic() < deadline:
    time.sleep(0.1)
print("FLOWING" if rt.status()["camera_node"].frames >= 10 else "NO FRAMES", flush=True)
if sys.argv[3] == "stop":
    rt.stop()
    print("STOPPED", flush=True)
else:
    time.sleep(600)  # until killed
"""


def _segments(pid: int) -> list[str]:
    return sorted(p.name for p in SHM_DIR.glob(f"{PREFIX}{pid}_*"))


def _run(tmp: Path, mode: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", RUN, str(E2E), str(tmp), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )


def test_a_crashed_runtime_leaves_segments_that_the_next_start_removes(tmp_path):
    crashed = _run(tmp_path / "a", "wait")
    try:
        assert crashed.stdout.readline().strip() == "FLOWING"
        left = _segments(crashed.pid)
        assert any(".wake" in n for n in left) and any(".wake" not in n for n in left), left
        children = _children_of(crashed.pid)
        assert children
        os.kill(crashed.pid, signal.SIGKILL)  # no stop(), no cleanup of its own
        crashed.wait(10)
        # Its rings stay in /dev/shm; its children die with it (PR_SET_PDEATHSIG).
        rings = [n for n in left if ".wake" not in n]
        assert set(rings) <= set(_segments(crashed.pid))
        until(
            lambda: not any(pid_alive(p) for p in children),
            30,
            "the crashed runtime's children to exit",
        )
    finally:
        if crashed.poll() is None:
            os.killpg(crashed.pid, signal.SIGKILL)
    restarted = _run(tmp_path / "b", "stop")
    out, _ = restarted.communicate(timeout=180)
    assert out.split() == ["FLOWING", "STOPPED"], out
    # Swept by the new runtime's start (or by another runtime starting on this machine
    # meanwhile: any start sweeps the rings of dead creators).
    assert _segments(crashed.pid) == []
    assert _segments(restarted.pid) == []  # and an orderly stop leaves nothing


def _children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found
