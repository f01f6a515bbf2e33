"""`panoptes up`: the README's one command starts the platform on embedded defaults."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


@pytest.mark.e2e
def test_up_starts_the_control_plane_and_says_how_to_use_it(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path / "up.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "panoptes",
                "up",
                "--data-dir",
                str(tmp_path / "d"),
                "--port",
                str(port),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                        break
                except OSError:
                    assert proc.poll() is None, log.read_text()
                    assert time.monotonic() < deadline, log.read_text()
                    time.sleep(0.2)
            # SQLite database, object store and keys are in the data dir.
            assert (tmp_path / "d" / "panoptes.db").is_file()
            assert (tmp_path / "d" / "credentials").is_file()
        finally:
            proc.terminate()
            proc.wait(timeout=20)
    text = log.read_text()
    assert "control plane" in text
    assert f'eval "$(panoptes env --data-dir {tmp_path / "d"})"' in text
