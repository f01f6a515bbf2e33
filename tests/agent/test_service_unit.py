"""`panoptes agent --systemd-unit`: the unit that starts the agent at boot."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from unit_files import unit_service


def _unit(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "panoptes", "agent", *args, "--systemd-unit"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_unit_runs_the_same_agent_command_at_boot(tmp_path: Path):
    data = tmp_path / "device data 100% $HOME"  # what systemd would split or expand
    stick = tmp_path / "usb"
    unit = _unit("--data-dir", str(data), "--watch", str(stick), "--output-host", "0.0.0.0")
    argv, env = unit_service(unit)
    assert argv == [
        sys.executable, "-m", "panoptes", "agent", "--data-dir", str(data),
        "--watch", str(stick), "--output-host", "0.0.0.0",
    ]  # fmt: skip
    assert env == {"PYTHONUNBUFFERED": "1"}
    lines = set(unit.splitlines())
    # Started at boot, again after a crash; a stop lets the launcher end every app first.
    assert {"WantedBy=multi-user.target", "Restart=always", "KillMode=mixed"} <= lines
    assert "After=network-online.target" in lines


def test_systemd_accepts_the_unit(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (scripts/test.sh installs it)")
    unit = tmp_path / "panoptes-agent.service"
    archive = tmp_path / "certificates-omni_lobby.zip"
    unit.write_text(_unit("--data-dir", str(tmp_path / "my device"), "--config", str(archive)))
    done = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr


def test_the_unit_command_runs_the_agent(tmp_path: Path):
    """The unit's ExecStart, run as systemd would, is the agent: with no identity and no
    archive it says how to provision and exits (systemd would retry every 5 s)."""
    argv, env = unit_service(_unit("--data-dir", str(tmp_path / "empty")))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0
    assert "holds no device identity" in done.stdout + done.stderr
