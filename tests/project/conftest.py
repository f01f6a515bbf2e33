"""Fixtures for panoptes.project tests: real project folders in tmp_path."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from panoptes.project import Project, init_project


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project.at(init_project(tmp_path, "app"))


@pytest.fixture
def make_tar(tmp_path: Path) -> Callable[..., Path]:
    """make_tar("m.tar.gz", {"model.pth": b"..."}) -> path of a real .tar.gz."""

    def make(name: str, members: dict[str, bytes]) -> Path:
        path = tmp_path / name
        with tarfile.open(path, "w:gz") as tar:
            for arcname, data in members.items():
                info = tarfile.TarInfo(arcname)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        return path

    return make
