"""The control plane's HTTP front: every AWS-style request, one path through.

verify SigV4 -> pick the service from the credential scope -> read the body (limits,
aws-chunked, checksums) -> rate limit per account -> parse with the service model ->
``backend.handle`` -> serialize. Errors become the service's own error format; an
unexpected exception becomes InternalServerException with a request id (the
traceback goes to the log, never to the client).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from panoptes.cloud.backend import CredentialStore, ServiceBackend, runs_inline
from panoptes.cloud.context import RequestContext
from panoptes.cloud.errors import InternalError, ServiceError, Throttled, ValidationError
from panoptes.cloud.policy import authorize
from panoptes.cloud.protocol.intake import BodyTooLarge, read_body
from panoptes.cloud.protocol.jsonrpc import JsonRpcProtocol
from panoptes.cloud.protocol.models import load_service_model
from panoptes.cloud.protocol.negotiate import NegotiatedProtocol, speaks_several
from panoptes.cloud.protocol.query import QueryProtocol
from panoptes.cloud.protocol.ratelimit import RateLimiter
from panoptes.cloud.protocol.restjson import RestJsonProtocol
from panoptes.cloud.protocol.restxml import RestXmlProtocol
from panoptes.cloud.protocol.s3front import OPERATIONS as S3_OPERATIONS
from panoptes.cloud.protocol.s3front import S3Front
from panoptes.cloud.protocol.sigv2 import is_presigned_v2, verify_v2
from panoptes.cloud.protocol.sigv4 import (
    AuthFailure,
    claimed_payload_hash,
    parse_authorization,
    verify,
)
from panoptes.cloud.protocol.wire import WireError, WireRequest, WireResponse
from panoptes.cloud.storage.base import ObjectStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limits:
    #: Largest API request body kept in memory (rest-json, json).
    api_body_bytes: int = 8 << 20
    #: Largest single S3 PUT (S3's own limit is 5 GiB).
    upload_bytes: int = 5 << 30
    rate_limit: bool = True
    requests_per_second: float = 5.0
    mutating_per_second: float = 1.0
    #: Services exempt from rate limits: S3 uploads send many parts in parallel; the
    #: Panorama quotas (5/s, 1/s mutating) are not CloudWatch's, whose calls are all POST.
    unlimited_services: frozenset[str] = field(
        default_factory=lambda: frozenset({"s3", "logs", "monitoring"})
    )


NO_LIMITS = Limits(rate_limit=False)


def _protocol_for(name: str):
    model = load_service_model(name)
    if speaks_several(model):
        return NegotiatedProtocol(model)
    if model.protocol == "rest-json":
        return RestJsonProtocol(model)
    if model.protocol == "json":
        return JsonRpcProtocol(model)
    if model.protocol == "rest-xml" and name == "s3":
        return RestXmlProtocol(model, S3_OPERATIONS)
    if model.protocol == "query":  # IAM (roles)
        return QueryProtocol(model)
    raise ValueError(f"no protocol implementation for {name} ({model.protocol})")


class _Front:
    """Per-app state: protocols and backends by signing name, limits, clock."""

    def __init__(
        self,
        backends: dict[str, ServiceBackend],
        credentials: CredentialStore,
        limits: Limits,
        now: Callable[[], datetime],
        limiter: RateLimiter | None,
    ) -> None:
        self.credentials = credentials
        self.limits = limits
        self.now = now
        self.limiter = limiter
        self.services: dict[str, tuple[Any, ServiceBackend]] = {}
        for name, backend in backends.items():
            protocol = _protocol_for(name)
            self.services[protocol.model.signing_name or name] = (protocol, backend)

    async def __call__(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        wire = _wire_request(request)
        protocol = None
        service = None
        body_file = None
        try:
            if is_presigned_v2(wire):
                service = "s3"
            else:
                auth = parse_authorization(wire)
                service = auth.service
            if service not in self.services:
                raise WireError(
                    "UnrecognizedClientException",
                    f"This endpoint does not serve the service {service!r} named in the "
                    f"credential scope (it serves: {', '.join(sorted(self.services))})",
                    status=400,
                )
            protocol, backend = self.services[service]
            if isinstance(protocol, NegotiatedProtocol):
                protocol = protocol.select(wire)
            credential, region, body = await self._authenticate(request, wire, service)
            wire.body, wire.body_file, body_file = body.data or b"", body.file, body.file
            self._throttle(credential.account_id, service, wire.method)
            ctx = RequestContext(
                account_id=credential.account_id,
                region=region,
                access_key_id=credential.access_key_id,
                principal=credential.principal,
                request_id=request_id,
            )
            operation, params = protocol.parse(wire)
            # A role session may do only what its role allows; other keys pass.
            authorize(credential, service, operation.name, params, region)
            if runs_inline(backend, operation.name):
                result = backend.handle(operation.name, ctx, params)
            else:
                result = await run_in_threadpool(backend.handle, operation.name, ctx, params)
            response = protocol.serialize(operation, result or {}, request_id)
        except AuthFailure as exc:
            response = self._error(exc.for_service(service), protocol, request_id, wire)
        except BodyTooLarge as exc:
            error: ServiceError = (
                WireError("EntityTooLarge", str(exc), status=400)
                if service == "s3"
                else ValidationError(str(exc), reason="OTHER")
            )
            response = self._error(error, protocol, request_id, wire)
        except ServiceError as exc:
            response = self._error(exc, protocol, request_id, wire)
        except Exception:
            log.exception("request %s failed: %s %s", request_id, wire.method, wire.path)
            error = InternalError(f"Internal error (request id {request_id})")
            response = self._error(error, protocol, request_id, wire)
        finally:
            if body_file is not None:
                body_file.close()
        return _starlette_response(response, wire.method)

    async def _authenticate(self, request: Request, wire: WireRequest, service: str):
        """(credential, region, body): the signature checked, the body read and checked."""
        spool = service == "s3"
        limit = self.limits.upload_bytes if spool else self.limits.api_body_bytes
        if is_presigned_v2(wire):
            credential = verify_v2(wire, self.credentials, now=self.now())
            body = await read_body(request.stream(), wire, verified=None, limit=limit, spool=spool)
            return credential, "us-east-1", body
        auth = parse_authorization(wire)
        claimed = claimed_payload_hash(wire, auth)
        if claimed is None:
            # Non-S3 SDKs sign the body's hash without sending it: read first.
            body = await read_body(request.stream(), wire, verified=None, limit=limit, spool=False)
            verified = verify(wire, auth, self.credentials, body.sha256, now=self.now())
        else:
            # Refuse a bad signature before reading a possibly huge body.
            verified = verify(wire, auth, self.credentials, claimed, now=self.now())
            body = await read_body(
                request.stream(), wire, verified=verified, limit=limit, spool=spool
            )
        return verified.credential, auth.region, body

    def _throttle(self, account: str, service: str, method: str) -> None:
        if self.limiter is None or service in self.limits.unlimited_services:
            return
        wait = self.limiter.check(account, mutating=method not in ("GET", "HEAD"))
        if wait:
            raise Throttled("Rate exceeded", retry_after=wait)

    def _error(self, err: ServiceError, protocol, request_id: str, wire: WireRequest):
        try:
            if protocol is None:
                protocol = self._fallback_protocol(wire)
            if isinstance(protocol, RestXmlProtocol):
                return protocol.serialize_error(err, request_id, head=wire.method == "HEAD")
            return protocol.serialize_error(err, request_id)
        except Exception:
            log.exception("request %s: could not serialize %r", request_id, err)
            return WireResponse(500, [("x-amzn-RequestId", request_id)], b"")

    def _fallback_protocol(self, wire: WireRequest):
        # Before the signature names a service (an unsigned request), guess from the
        # request's look: S3 clients send x-amz-content-sha256, JSON ones a target.
        if wire.header("x-amz-content-sha256") and "s3" in self.services:
            return self.services["s3"][0]
        for protocol, _ in self.services.values():
            if isinstance(protocol, RestJsonProtocol):
                return protocol
        return RestJsonProtocol(load_service_model("panorama"))


def _wire_request(request: Request) -> WireRequest:
    scope = request.scope
    raw_path = scope.get("raw_path") or scope["path"].encode()
    headers = [(k.decode("latin-1").lower(), v.decode("latin-1")) for k, v in scope["headers"]]
    return WireRequest(
        method=scope["method"],
        path=raw_path.decode("latin-1").split("?", 1)[0],
        query=scope.get("query_string", b"").decode("latin-1"),
        headers=headers,
    )


def _starlette_response(response: WireResponse, method: str) -> Response:
    headers = {k: v for k, v in response.headers}
    if method == "HEAD":
        return Response(b"", response.status, headers=headers)
    if isinstance(response.body, bytes):
        return Response(response.body, response.status, headers=headers)
    return StreamingResponse(response.body, response.status, headers=headers)


async def _healthz(_: Request) -> Response:
    return PlainTextResponse("ok")


def create_app(
    backends: dict[str, ServiceBackend],
    credentials: CredentialStore,
    store: ObjectStore,
    *,
    limits: Limits = Limits(),
    extra_routes: Sequence[BaseRoute] = (),
    now: Callable[[], datetime] | None = None,
    clock: Callable[[], float] | None = None,
) -> Starlette:
    """The ASGI app: AWS APIs for ``backends`` (+ S3 over ``store``), plain routes first.

    ``extra_routes`` (device provisioning and other non-AWS endpoints) and
    ``/healthz`` are matched before the AWS front and are not SigV4-checked: they
    must authenticate on their own terms.
    """
    services = dict(backends)
    services.setdefault("s3", S3Front(store))
    limiter = None
    if limits.rate_limit:
        limiter = RateLimiter(limits.requests_per_second, limits.mutating_per_second)
        if clock is not None:
            limiter.clock = clock
    front = _Front(services, credentials, limits, now or (lambda: datetime.now(UTC)), limiter)

    async def aws(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        response = await front(Request(scope, receive))
        await response(scope, receive, send)

    routes: list[BaseRoute] = [
        *extra_routes,
        Route("/healthz", _healthz, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    # Everything no plain route claims is an AWS request, whatever its path holds
    # (a route pattern would miss paths with encoded newlines and the like).
    app.router.default = aws
    return app
