"""Test helpers: the app under a real uvicorn on 127.0.0.1, and a canned Panorama backend."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
from protocol_examples import example

from panoptes.cloud.backend import Credential, StaticCredentials
from panoptes.cloud.context import RequestContext
from panoptes.cloud.protocol.models import load_service_model

ACCOUNT = "123456789012"
ADMIN = Credential("AKIDPANOPTESADMIN", "secret/admin+key", ACCOUNT, "admin")
DISABLED = Credential("AKIDPANOPTESOFF", "secret-off", ACCOUNT, "old", enabled=False)
CREDENTIALS = StaticCredentials((ADMIN, DISABLED))


class CannedPanorama:
    """Answers every operation with example data built from its output shape.

    Set ``next_error`` to make the next call raise it (a ServiceError to reach an
    error shape over HTTP, any other exception to see how crashes are reported).
    """

    service = "panorama"

    def __init__(self) -> None:
        self.model = load_service_model("panorama")
        self.calls: list[tuple[str, RequestContext, dict]] = []
        self.next_error: Exception | None = None

    def handle(self, operation: str, ctx: RequestContext, params: dict[str, Any]) -> dict:
        self.calls.append((operation, ctx, params))
        if self.next_error is not None:
            error, self.next_error = self.next_error, None
            raise error
        return example(self.model.operation_model(operation).output_shape)


@contextmanager
def serve(app) -> Iterator[str]:
    """Run ``app`` under uvicorn in a thread; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        threading.Event().wait(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
