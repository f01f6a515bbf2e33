"""A small agent worker for the launcher tests: a real JobRunner driven through files.

    python launcher_worker.py DATA_DIR CONTROL_DIR BASE_URL

It imports panoptes (the version the launcher selected through PYTHONPATH), appends
a start record to CONTROL_DIR/events.jsonl, marks itself healthy, reports jobs to
CONTROL_DIR/reports.jsonl and reads the desired jobs from CONTROL_DIR/desired.json.
Test builds of panoptes may carry ``_TEST_CRASH_AT_START`` or ``_TEST_NEVER_HEALTHY``
in panoptes/__init__.py: the broken versions of the OTA tests. A file
CONTROL_DIR/crash-once makes the next start exit with code 3 (and is removed).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

import panoptes
from panoptes.agent.jobs import JobRunner
from panoptes.agent.software import SoftwareStore, http_download, running_version


def append(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def main() -> int:
    data_dir, control, base_url = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
    append(
        control / "events.jsonl",
        {"pid": os.getpid(), "version": running_version(), "file": panoptes.__file__},
    )
    if getattr(panoptes, "_TEST_CRASH_AT_START", False):
        raise RuntimeError("this build crashes at start")
    crash_once = control / "crash-once"
    if crash_once.exists():
        crash_once.unlink()
        return 3
    exit_code: list[int] = []
    stop = threading.Event()

    def request_exit(code: int) -> None:
        exit_code.append(code)
        stop.set()

    def publish(kind: str, report: dict) -> bool:
        append(control / "reports.jsonl", {"kind": kind, **report})
        return True

    runner = JobRunner(data_dir, publish, request_exit, http_download(base_url))
    if not getattr(panoptes, "_TEST_NEVER_HEALTHY", False):
        SoftwareStore(data_dir).mark_healthy(timeout=30)
    runner.resume()
    while not stop.wait(0.05):
        try:
            desired = json.loads((control / "desired.json").read_text())
        except (FileNotFoundError, ValueError):
            continue
        for job in desired.get("Jobs", []):
            runner.handle(job, desired.get("Software"))
    runner.wait(60)
    time.sleep(0.1)  # a real worker stops its runtimes here
    return exit_code[0]


if __name__ == "__main__":
    sys.exit(main())
