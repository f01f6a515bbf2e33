"""The sample application as the deploy wizard takes it, and a deployment through its forms."""

from __future__ import annotations

import httpx
from api_helpers import for_account
from console_client import ConsoleClient

from sample_app import SAMPLE_APP


def sample_graph(account: str) -> str:
    """The developer guide's graph.json, for ACCOUNT."""
    return for_account((SAMPLE_APP / "graphs/my-app/graph.json").read_text(), account)


def step1(device_id: str, graph: str, **extra: str) -> dict[str, str]:
    return {"graph": graph, "name": "sample-app", "description": "from the console",
            "device": device_id, **extra}  # fmt: skip


def deploy(console: ConsoleClient, device_id: str, graph: str, **answers: str) -> httpx.Response:
    """Step 2's form posted with ANSWERS (camera.NODE, launch.NODE.CAMERA, param.NODE, port)."""
    fields = {"step": "2", **step1(device_id, graph), **answers}
    return console.submit("/console/deploy", "/console/deploy", fields)
