"""Agent tests: a real control plane (in a thread), its platform CA, real TLS servers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS / "cloud", TESTS / "agent"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from api_helpers import Stack, running_stack  # noqa: E402
from link_support import Pki  # noqa: E402


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack("sqlite", tmp_path_factory.mktemp("control-plane")) as s:
        yield s


@pytest.fixture(scope="module")
def pki(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki(stack.server.config.data_dir, tmp_path_factory.mktemp("pki"))
