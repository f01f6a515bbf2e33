"""A real control plane (build_server under uvicorn) with its console, and a browser-less client.

`console` signs in through the sign-in form like a browser would (cookies, the
forms' CSRF tokens); the Panorama side is checked with unchanged boto3 clients
(tests/cloud/api_helpers.py).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cloud"))

from api_helpers import Stack, running_stack
from console_client import ConsoleClient


def _load_e2e_fixtures():  # type: ignore[no-untyped-def]
    # The RTSP test camera and the sample's model live in tests/e2e/conftest.py; loaded
    # under its own name so it does not shadow this conftest.
    path = Path(__file__).resolve().parents[1] / "e2e" / "conftest.py"
    spec = importlib.util.spec_from_file_location("panoptes_e2e_conftest", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_e2e = _load_e2e_fixtures()
rtsp_available = _e2e.rtsp_available
rtsp_server = _e2e.rtsp_server
squeezenet = _e2e.squeezenet  # the sample's real model, for journeys with the real agent


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    with running_stack("sqlite", tmp_path / "data") as st:
        yield st


@pytest.fixture
def admin_password(stack: Stack) -> str:
    password = stack.server.console_user.new_password
    assert password is not None
    return password


@pytest.fixture
def anonymous(stack: Stack) -> Iterator[ConsoleClient]:
    with httpx.Client(base_url=stack.url, follow_redirects=False, timeout=30) as http:
        yield ConsoleClient(http, stack)


@pytest.fixture
def console(anonymous: ConsoleClient, admin_password: str) -> ConsoleClient:
    response = anonymous.sign_in("admin", admin_password)
    assert response.status_code == 303, response.text
    return anonymous
