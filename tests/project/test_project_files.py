"""files.py: hashing, atomic JSON writes, JSON errors that name the spot."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from panoptes.project import ProjectError
from panoptes.project.files import read_json, sha256_file, write_json


def test_sha256_matches_hashlib_across_chunks(tmp_path: Path) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # crosses several 1 MiB chunks
    f = tmp_path / "blob"
    f.write_bytes(data)
    assert sha256_file(f) == hashlib.sha256(data).hexdigest()


def test_write_json_uses_four_spaces_and_trailing_newline(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    write_json(f, {"a": {"b": [1]}})
    assert f.read_text() == '{\n    "a": {\n        "b": [\n            1\n        ]\n    }\n}\n'


def test_write_json_replaces_atomically_keeping_mode(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text("{}")
    f.chmod(0o600)
    write_json(f, {"k": 1})
    assert f.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]  # no temp file left


def test_read_json_error_names_file_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "graph.json"
    f.write_text('{\n    "a": 1,\n}\n')
    with pytest.raises(ProjectError) as e:
        read_json(f)
    assert f"{f}:3:1:" in e.value.message
    assert e.value.hint
