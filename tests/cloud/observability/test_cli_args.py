"""`panoptes alarms` and `panoptes logs` refuse bad arguments before calling anything."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from panoptes.cli.main import app


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_an_alarm_needs_someone_to_tell(tmp_path: Path) -> None:
    code, out = run("alarms", "create", "a", "--metric", "DeviceActive", "--threshold", "1",
                    "--data-dir", str(tmp_path))  # fmt: skip
    assert code == 1 and "add --webhook URL and/or --email ADDRESS" in out


def test_bad_comparison_dimension_and_duration(tmp_path: Path) -> None:
    base = ["alarms", "create", "a", "--metric", "M", "--threshold", "1", "--email", "o@x"]
    code, out = run(*base, "--comparison", "=>", "--data-dir", str(tmp_path))
    assert code == 1 and "use >=, >, < or <=" in out
    code, out = run(*base, "--dimension", "DeviceId", "--data-dir", str(tmp_path))
    assert code == 1 and "is not NAME=VALUE" in out
    code, out = run("logs", "tail", "/g", "--since", "ten minutes", "--data-dir", str(tmp_path))
    assert code == 1 and "use e.g. 30s, 10m, 2h or 1d" in out


def test_without_a_running_service_it_says_how_to_start_one(tmp_path: Path) -> None:
    code, out = run("logs", "tail", "/g", "--data-dir", str(tmp_path))
    assert code == 1 and "panoptes serve --data-dir" in out
