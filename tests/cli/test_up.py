"""`panoptes up`: the README's one command starts the platform on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_support import running_panoptes


@pytest.mark.e2e
def test_up_starts_the_control_plane_and_says_how_to_use_it(tmp_path: Path) -> None:
    data, log = tmp_path / "d", tmp_path / "up.log"
    with running_panoptes(data, tmp_path, command="up", log=log):
        # SQLite database, object store and keys are in the data dir.
        assert (data / "panoptes.db").is_file()
        assert (data / "credentials").is_file()
    text = log.read_text()
    assert "control plane" in text
    assert f'eval "$(panoptes env --data-dir {data})"' in text
