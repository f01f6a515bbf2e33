"""The launcher with real processes: REBOOT, OTA to a version built here, rollbacks.

Each test runs ``python -m panoptes.agent.launcher`` with tests/agent/launcher_worker.py
as the worker (a real JobRunner); wheels of panoptes 0.9.x are built from this
worktree by ota_support.build_wheel and served over HTTP.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ota_support import build_wheel, image, software_endpoint

from panoptes.agent.software import SoftwareStore, write_json
from panoptes.shmem import pid_alive

pytestmark = pytest.mark.slow

WORKER = Path(__file__).with_name("launcher_worker.py")
BASE = "0.1.0"  # this worktree's version: what the launcher runs from
GOOD, CRASHES, NEVER_HEALTHY, UNIMPORTABLE = "0.9.0", "0.9.1", "0.9.2", "0.9.3"
WAIT = 60.0  # bounds every wait; the tests never assert on durations


@pytest.fixture(scope="module")
def software(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("wheels")
    wheels = {
        GOOD: build_wheel(GOOD, out),
        CRASHES: build_wheel(CRASHES, out, "_TEST_CRASH_AT_START = True\n"),
        NEVER_HEALTHY: build_wheel(NEVER_HEALTHY, out, "_TEST_NEVER_HEALTHY = True\n"),
        UNIMPORTABLE: build_wheel(UNIMPORTABLE, out, "raise ImportError('broken build')\n"),
    }
    with software_endpoint(wheels) as url:
        yield url, {"Latest": GOOD, "Images": {v: image(w, v) for v, w in wheels.items()}}


class Device:
    """One launcher process and the files its worker talks through."""

    def __init__(self, root: Path, url: str, software: dict[str, Any]) -> None:
        self.data, self.control = root / "data", root / "control"
        self.data.mkdir(exist_ok=True)
        self.control.mkdir(exist_ok=True)
        self.url, self.software = url, software
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, health_timeout: float = 30.0) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "panoptes.agent.launcher", "--data-dir", str(self.data)),
                *("--health-timeout", str(health_timeout), "--"),
                *(sys.executable, str(WORKER), str(self.data), str(self.control), self.url),
            ],
            stdout=subprocess.DEVNULL,
            stderr=(self.control / "launcher.log").open("ab"),
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def job(self, job_id: str, job_type: str, version: str | None = None) -> None:
        job = {"JobId": job_id, "JobType": job_type, "ImageVersion": version, "Status": "PENDING"}
        write_json(self.control / "desired.json", {"Jobs": [job], "Software": self.software})

    def _lines(self, name: str) -> list[dict[str, Any]]:
        path = self.control / name
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line]

    def starts(self) -> list[dict[str, Any]]:
        return self._lines("events.jsonl")

    def reports(self, job_id: str) -> list[dict[str, Any]]:
        return [r for r in self._lines("reports.jsonl") if r["JobId"] == job_id]

    def wait_for(self, what: str, ready: Callable[[], bool]) -> None:
        deadline = time.monotonic() + WAIT
        while not ready():
            if time.monotonic() > deadline:
                log = (self.control / "launcher.log").read_text()[-3000:]
                raise AssertionError(f"timed out waiting for {what}; launcher log:\n{log}")
            time.sleep(0.05)

    def wait_finished(self, job_id: str) -> list[dict[str, Any]]:
        self.wait_for(
            f"job {job_id} to finish",
            lambda: any(r["Status"] in ("COMPLETED", "FAILED") for r in self.reports(job_id)),
        )
        return self.reports(job_id)

    def wait_starts(self, n: int) -> list[dict[str, Any]]:
        self.wait_for(f"{n} worker starts", lambda: len(self.starts()) >= n)
        return self.starts()


@pytest.fixture
def device(tmp_path: Path, software: tuple[str, dict[str, Any]]) -> Iterator[Device]:
    d = Device(tmp_path, *software)
    yield d
    d.stop()


def statuses(reports: list[dict[str, Any]]) -> list[str]:
    return [r["Status"] for r in reports]


def test_reboot_restarts_the_worker_and_the_new_worker_reports_completed(device: Device) -> None:
    device.start()
    first = device.wait_starts(1)[0]
    device.job("device-1-0", "REBOOT")
    reports = device.wait_finished("device-1-0")
    assert statuses(reports) == ["IN_PROGRESS", "REBOOTING", "COMPLETED"]
    starts = device.starts()
    assert len(starts) == 2 and starts[1]["pid"] != first["pid"]
    assert [s["version"] for s in starts] == [BASE, BASE]
    # The desired state still lists the job: the new worker must not run it again.
    time.sleep(1.0)
    assert len(device.starts()) == 2 and statuses(device.reports("device-1-0"))[-1] == "COMPLETED"
    device.stop()  # SIGTERM to the launcher stops its worker too
    device.wait_for("the worker to stop", lambda: not pid_alive(starts[1]["pid"]))


def test_a_crashed_worker_is_started_again(device: Device) -> None:
    (device.control / "crash-once").touch()
    device.start()
    starts = device.wait_starts(2)
    assert [s["version"] for s in starts] == [BASE, BASE]
    assert not (device.control / "crash-once").exists()
    assert "worker exited with code 3" in (device.control / "launcher.log").read_text()


def test_ota_to_a_good_version_runs_it_and_reports_completed(device: Device) -> None:
    device.start()
    device.wait_starts(1)
    device.job("device-1-1", "OTA", GOOD)
    reports = device.wait_finished("device-1-1")
    assert statuses(reports) == [
        "IN_PROGRESS",
        "DOWNLOADING",
        "VERIFYING",
        "REBOOTING",
        "COMPLETED",
    ]
    new = device.starts()[-1]
    assert new["version"] == GOOD
    assert Path(new["file"]).is_relative_to(device.data / "software" / GOOD)
    store = SoftwareStore(device.data, base_version=BASE)
    assert store.current().version == GOOD and store.previous().version == BASE
    # The new version is what runs from now on, across the worker's restarts.
    device.job("device-1-2", "REBOOT")
    assert statuses(device.wait_finished("device-1-2"))[-1] == "COMPLETED"
    assert device.starts()[-1]["version"] == GOOD


def test_ota_to_a_version_that_crashes_at_start_rolls_back(device: Device) -> None:
    device.start()
    device.wait_starts(1)
    device.job("device-1-3", "OTA", CRASHES)
    reports = device.wait_finished("device-1-3")
    assert statuses(reports) == ["IN_PROGRESS", "DOWNLOADING", "VERIFYING", "REBOOTING", "FAILED"]
    reason = reports[-1]["Reason"]
    assert f"panoptes {CRASHES} exited with code 1 before it was healthy" in reason
    assert "this build crashes at start" in reason
    # The crashed version did start; the one reporting FAILED is the previous version.
    assert [s["version"] for s in device.starts()] == [BASE, CRASHES, BASE]
    assert SoftwareStore(device.data, base_version=BASE).current().version == BASE


def test_ota_to_a_version_that_never_reports_healthy_rolls_back(device: Device) -> None:
    device.start(health_timeout=3)
    device.wait_starts(1)
    device.job("device-1-4", "OTA", NEVER_HEALTHY)
    reports = device.wait_finished("device-1-4")
    assert statuses(reports)[-1] == "FAILED"
    assert reports[-1]["Reason"] == f"panoptes {NEVER_HEALTHY} did not report healthy within 3 s"
    starts = device.starts()
    assert [s["version"] for s in starts] == [BASE, NEVER_HEALTHY, BASE]
    assert not pid_alive(starts[1]["pid"])


def test_ota_to_a_version_that_does_not_import_fails_before_switching(device: Device) -> None:
    device.start()
    device.wait_starts(1)
    device.job("device-1-5", "OTA", UNIMPORTABLE)
    reports = device.wait_finished("device-1-5")
    assert statuses(reports) == ["IN_PROGRESS", "DOWNLOADING", "VERIFYING", "FAILED"]
    assert (
        reports[-1]["Reason"]
        == f"software {UNIMPORTABLE} does not import: ImportError: broken build"
    )
    assert len(device.starts()) == 1  # never switched, never restarted


def test_launcher_killed_during_a_trial_keeps_the_last_good_version(device: Device) -> None:
    device.start(health_timeout=600)
    device.wait_starts(1)
    device.job("device-1-6", "OTA", NEVER_HEALTHY)
    trial = device.wait_starts(2)[1]
    assert trial["version"] == NEVER_HEALTHY
    assert device.proc is not None
    os.kill(device.proc.pid, signal.SIGKILL)
    device.proc.wait()
    # The trial worker dies with its launcher (no orphan of an unproven version).
    device.wait_for("the trial worker to exit", lambda: not pid_alive(trial["pid"]))
    store = SoftwareStore(device.data, base_version=BASE)
    assert store.current().version == BASE
    # A new launcher tries the version once more, then rolls back to the good one.
    device.start(health_timeout=3)
    reports = device.wait_finished("device-1-6")
    assert statuses(reports)[-1] == "FAILED"
    assert NEVER_HEALTHY in reports[-1]["Reason"]
    assert [s["version"] for s in device.starts()] == [BASE, NEVER_HEALTHY, NEVER_HEALTHY, BASE]
    assert store.current().version == BASE and store.pending() is None
