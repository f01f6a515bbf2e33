"""The Prometheus exposition endpoint: GET /_panoptes/metrics with a bearer token.

Not an AWS API, so not SigV4: Prometheus sends ``Authorization: Bearer TOKEN``, the
token being DATA_DIR/prometheus-token (made on first start, mode 0600). The path
starts with an underscore so it can never shadow an S3 bucket (bucket names cannot).
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from panoptes.cloud.services.backend import Services
from panoptes.cloud.services.metrics import prometheus_exposition

PROMETHEUS_PATH = "/_panoptes/metrics"
TOKEN_FILE = "prometheus-token"
#: A series whose newest datum is older than this is left out (it went quiet).
FRESHNESS = timedelta(minutes=10)


def prometheus_token(data_dir: Path) -> str:
    path = Path(data_dir) / TOKEN_FILE
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def prometheus_route(env: Services, data_dir: Path) -> Route:
    token = prometheus_token(data_dir)

    async def exposition(request: Request) -> Response:
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            return PlainTextResponse(
                f"send Authorization: Bearer <the token in {TOKEN_FILE} in the data dir>\n",
                status_code=401,
            )
        text = await run_in_threadpool(prometheus_exposition, env, datetime.now(UTC), FRESHNESS)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    return Route(PROMETHEUS_PATH, exposition, methods=["GET"])
