"""JobRunner in this process: statuses, failures with reasons, idempotence, offline reports.

The launcher tests (test_launcher.py) run the same JobRunner inside real worker
processes for the journeys that restart; these cover each failure's report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ota_support import image, software_endpoint

from panoptes import link
from panoptes.agent.jobs import JobRunner
from panoptes.agent.software import (
    EXIT_REBOOT,
    Download,
    SoftwareStore,
    http_download,
    running_version,
)

WAIT = 60.0


class Cloud:
    """What the runner reports to, with a switch to be offline."""

    def __init__(self) -> None:
        self.reports: list[dict[str, Any]] = []
        self.online = True
        self.exits: list[int] = []

    def publish(self, kind: str, report: dict[str, Any]) -> bool:
        assert kind == link.REPORT and report["Type"] == link.REPORT_JOB
        if not self.online:
            return False
        self.reports.append(report)
        return True

    def statuses(self, job_id: str) -> list[str]:
        return [r["Status"] for r in self.reports if r["JobId"] == job_id]

    def runner(self, data: Path, download: Download) -> JobRunner:
        return JobRunner(data, self.publish, self.exits.append, download)


@pytest.fixture
def endpoint(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    # Not a wheel: these tests fail before anything would be installed.
    blob = tmp_path / "not-a-wheel.whl"
    blob.write_bytes(b"panoptes 0.9.9 " * 1000)
    with software_endpoint({"0.9.9": blob}) as url:
        yield url, {"Latest": "0.9.9", "Images": {"0.9.9": image(blob, "0.9.9")}}


def ota(job_id: str, version: str) -> dict[str, Any]:
    return {"JobId": job_id, "JobType": "OTA", "ImageVersion": version, "Status": "PENDING"}


def run(runner: JobRunner, job: dict[str, Any], software: dict[str, Any] | None = None) -> None:
    runner.handle(job, software)
    assert runner.wait(WAIT)


def test_ota_with_a_wrong_digest_fails_and_changes_nothing(
    tmp_path: Path, endpoint: tuple[str, dict[str, Any]]
) -> None:
    url, software = endpoint
    software["Images"]["0.9.9"]["Sha256"] = "0" * 64
    cloud = Cloud()
    run(cloud.runner(tmp_path, http_download(url)), ota("d-0", "0.9.9"), software)
    assert cloud.statuses("d-0") == ["IN_PROGRESS", "DOWNLOADING", "FAILED"]
    assert f"expected {'0' * 64}" in cloud.reports[-1]["Reason"]
    store = SoftwareStore(tmp_path)
    assert store.pending() is None and store.installed_versions() == [running_version()]
    assert cloud.exits == []


def test_ota_of_a_file_that_is_not_a_wheel_fails_at_verifying(
    tmp_path: Path, endpoint: tuple[str, dict[str, Any]]
) -> None:
    url, software = endpoint
    cloud = Cloud()
    run(cloud.runner(tmp_path, http_download(url)), ota("d-0", "0.9.9"), software)
    assert cloud.statuses("d-0") == ["IN_PROGRESS", "DOWNLOADING", "VERIFYING", "FAILED"]
    assert cloud.reports[-1]["Reason"].startswith("software 0.9.9: pip install failed:")
    assert SoftwareStore(tmp_path).pending() is None and cloud.exits == []


def test_ota_without_the_software_section_reads_it_from_the_device_endpoint(
    tmp_path: Path,
) -> None:
    blob = tmp_path / "not-a-wheel.whl"
    blob.write_bytes(b"panoptes 0.9.9 " * 1000)
    desired = {"Revision": 3, "Software": {"Images": {"0.9.9": image(blob, "0.9.9")}}}
    cloud = Cloud()
    with software_endpoint({"0.9.9": blob}, desired) as url:
        run(cloud.runner(tmp_path, http_download(url)), ota("d-8", "0.9.9"))
    # Found, downloaded and checked: it fails only because the file is no wheel.
    assert cloud.statuses("d-8") == ["IN_PROGRESS", "DOWNLOADING", "VERIFYING", "FAILED"]


def test_ota_failures_name_the_cause(tmp_path: Path, endpoint: tuple[str, dict[str, Any]]) -> None:
    url, software = endpoint
    cloud = Cloud()
    runner = cloud.runner(tmp_path, http_download(url))
    run(runner, ota("d-1", "0.9.8"), software)
    assert cloud.statuses("d-1") == ["IN_PROGRESS", "FAILED"]
    assert cloud.reports[-1]["Reason"] == (
        "software 0.9.8 is not published on the control plane (published: 0.9.9)"
    )
    software["Images"]["0.9.8"] = {**software["Images"]["0.9.9"], "Path": "/nowhere"}
    run(runner, ota("d-2", "0.9.8"), software)
    assert cloud.statuses("d-2") == ["IN_PROGRESS", "DOWNLOADING", "FAILED"]
    assert "HTTP Error 404" in cloud.reports[-1]["Reason"]
    run(runner, {"JobId": "d-3", "JobType": "SHUTDOWN", "Status": "PENDING"})
    assert cloud.statuses("d-3") == ["FAILED"]
    assert cloud.reports[-1]["Reason"] == "unknown JobType 'SHUTDOWN': expected OTA or REBOOT"


def test_ota_to_the_running_version_completes_at_once(tmp_path: Path) -> None:
    cloud = Cloud()
    run(cloud.runner(tmp_path, http_download("http://127.0.0.1:9")), ota("d-4", running_version()))
    assert cloud.statuses("d-4") == ["IN_PROGRESS", "COMPLETED"] and cloud.exits == []


def test_a_job_runs_once_across_restarts_and_reports_its_end_after_the_restart(
    tmp_path: Path,
) -> None:
    cloud = Cloud()
    reboot = {"JobId": "d-5", "JobType": "REBOOT", "Status": "PENDING"}
    first = cloud.runner(tmp_path, http_download("http://127.0.0.1:9"))
    run(first, reboot)
    run(first, reboot)  # the desired state is delivered again: nothing more happens
    first.resume()  # e.g. on a reconnect: the restart has not happened yet
    assert cloud.statuses("d-5") == ["IN_PROGRESS", "REBOOTING"] and cloud.exits == [EXIT_REBOOT]
    # The worker restarted: the same job in the desired state is not run again.
    second = cloud.runner(tmp_path, http_download("http://127.0.0.1:9"))
    second.resume()
    run(second, {**reboot, "Status": "REBOOTING"})
    assert cloud.statuses("d-5") == ["IN_PROGRESS", "REBOOTING", "COMPLETED"]
    assert cloud.exits == [EXIT_REBOOT]
    cloud.runner(tmp_path, http_download("http://127.0.0.1:9")).resume()
    assert cloud.statuses("d-5") == ["IN_PROGRESS", "REBOOTING", "COMPLETED"]


def test_reports_made_offline_are_sent_in_order_after_the_reconnect(tmp_path: Path) -> None:
    cloud = Cloud()
    cloud.online = False
    runner = cloud.runner(tmp_path, http_download("http://127.0.0.1:9"))
    run(runner, {"JobId": "d-6", "JobType": "REBOOT", "Status": "PENDING"})
    assert cloud.reports == [] and cloud.exits == [EXIT_REBOOT]
    # The worker restarted while still offline: the job's end joins the queue.
    runner = cloud.runner(tmp_path, http_download("http://127.0.0.1:9"))
    runner.resume()
    assert cloud.reports == []
    cloud.online = True
    runner.republish()
    runner.republish()
    assert cloud.statuses("d-6") == ["IN_PROGRESS", "REBOOTING", "COMPLETED"]


def test_a_job_cut_short_by_a_restart_is_reported_failed(tmp_path: Path) -> None:
    cloud = Cloud()
    release = threading.Event()

    def stuck_download(path: str, dest: Path) -> Path:
        release.wait(WAIT)
        raise OSError("released")

    software = {"Images": {"0.9.9": {"Path": "/x", "Sha256": "0" * 64}}}
    crashed = cloud.runner(tmp_path, stuck_download)
    crashed.handle(ota("d-7", "0.9.9"), software)
    try:
        # The process "restarts" while the download hangs: a new runner on the same data.
        for _ in range(int(WAIT / 0.05)):
            if cloud.statuses("d-7") == ["IN_PROGRESS", "DOWNLOADING"]:
                break
            time.sleep(0.05)
        cloud.runner(tmp_path, stuck_download).resume()
    finally:
        release.set()
        crashed.wait(WAIT)
    assert cloud.statuses("d-7")[:3] == ["IN_PROGRESS", "DOWNLOADING", "FAILED"]
    assert cloud.reports[2]["Reason"] == "the agent restarted during the job (at DOWNLOADING)"
