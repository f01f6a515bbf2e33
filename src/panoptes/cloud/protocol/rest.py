"""What rest-json and rest-xml share: routing by requestUri and the located members.

A REST operation is chosen by method, path template (``{Label}`` is one segment,
``{Label+}`` is greedy) and the query keys its requestUri or required querystring
members demand (S3's PutObject and UploadPart share ``PUT /{Bucket}/{Key+}``; only
``uploadId`` and ``partNumber`` tell them apart).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from botocore.model import OperationModel, ServiceModel, Shape, StructureShape

from panoptes.cloud.protocol.shapes import Problems, check_required, from_text, to_text
from panoptes.cloud.protocol.wire import WireError, WireRequest


@dataclass(frozen=True)
class _Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]
    labels: dict[str, str]  # regex group name -> URI label name
    literal_query: dict[str, str | None]  # key -> required value (None: any)
    required_query: frozenset[str]
    literal_chars: int  # more literal path text wins among equal matches


def _compile(operation: OperationModel) -> _Route:
    uri = operation.http["requestUri"]
    path, _, query = uri.partition("?")
    literal_query: dict[str, str | None] = {}
    for part in filter(None, query.split("&")):
        key, eq, value = part.partition("=")
        literal_query[key] = value if eq else None
    regex, labels, literal = "", {}, 0
    for i, piece in enumerate(re.split(r"(\{[^}]+\})", path)):
        if piece.startswith("{"):
            name = piece[1:-1]
            greedy = name.endswith("+")
            name = name.rstrip("+")
            group = f"g{i}"
            labels[group] = name
            regex += f"(?P<{group}>.+)" if greedy else f"(?P<{group}>[^/]+)"
        else:
            regex += re.escape(piece)
            literal += len(piece)
    shape = operation.input_shape
    required_query = frozenset(
        shape.members[m].serialization.get("name", m)
        for m in (shape.required_members if shape else [])
        if shape.members[m].serialization.get("location") == "querystring"
    )
    return _Route(
        operation,
        operation.http["method"],
        re.compile(regex + "/?"),
        labels,
        literal_query,
        required_query,
        literal,
    )


class RestRouter:
    """Finds the operation a request means, from the service model alone."""

    def __init__(self, model: ServiceModel, operations: Iterable[str] | None = None) -> None:
        names = list(operations) if operations is not None else model.operation_names
        self.model = model
        self._routes = [_compile(model.operation_model(n)) for n in names]

    def match(
        self, method: str, raw_path: str, query: dict[str, str]
    ) -> tuple[OperationModel, dict]:
        """(operation, decoded URI labels); WireError when nothing matches."""
        best, best_score, path_matched = None, None, False
        # A request that lacks only a required query member still means that operation:
        # it gets ValidationException for the member, not 405 (as AWS answers).
        lacking: tuple[OperationModel, dict] | None = None
        for route in self._routes:
            found = route.pattern.fullmatch(raw_path)
            if not found:
                continue
            path_matched = True
            if route.method != method:
                continue
            if any(
                k not in query or (v is not None and query[k] != v)
                for k, v in route.literal_query.items()
            ):
                continue
            if not route.required_query <= query.keys():
                if lacking is None:
                    lacking = (route.operation, _labels(route, found))
                continue
            score = (len(route.literal_query) + len(route.required_query), route.literal_chars)
            if best_score is None or score > best_score:
                best, best_score = (route.operation, _labels(route, found)), score
        if best is None and lacking is not None:
            return lacking
        if best is None:
            if path_matched:
                raise WireError(
                    "MethodNotAllowed", f"{method} is not allowed on {raw_path}", status=405
                )
            raise WireError(
                "UnknownOperationException",
                f"No {self.model.service_name} operation matches {method} {raw_path}",
                status=404,
            )
        return best


def _labels(route: _Route, found: re.Match[str]) -> dict[str, str]:
    return {route.labels[g]: unquote(v) for g, v in found.groupdict().items()}


def parse_located(
    shape: StructureShape | None,
    request: WireRequest,
    labels: dict[str, str],
    problems: Problems,
) -> dict[str, Any]:
    """Members bound to the URI, query string and headers."""
    params: dict[str, Any] = {}
    if shape is None:
        return params
    pairs = request.query_pairs()
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        wire = member.serialization.get("name", name)
        value: Any = None
        if where == "uri" and wire in labels:
            value = from_text(member, labels[wire], name, problems)
        elif where == "querystring":
            value = _from_query(member, wire, pairs, name, problems)
        elif where == "header":
            raw = request.header(wire)
            if raw is not None:
                value = _from_header(member, raw, name, problems)
        elif where == "headers":
            prefix = wire.lower()
            found = {k[len(prefix) :]: v for k, v in request.headers if k.startswith(prefix)}
            value = found or None
        if value is not None:
            params[name] = value
    return params


def _from_query(member: Shape, wire: str, pairs: list, path: str, problems: Problems) -> Any:
    if member.type_name == "map":
        # A querystring map takes every pair not claimed by a named member.
        return None
    values = [v for k, v in pairs if k == wire]
    if not values:
        return None
    if member.type_name == "list":
        items = [from_text(member.member, v, f"{path}.{i}", problems) for i, v in enumerate(values)]
        return [v for v in items if v is not None]
    return from_text(member, values[0], path, problems)


def _from_header(member: Shape, raw: str, path: str, problems: Problems) -> Any:
    if member.type_name == "list":
        return [from_text(member.member, v.strip(), path, problems) for v in raw.split(",")]
    return from_text(member, raw.strip(), path, problems)


def finish(shape: StructureShape | None, params: dict, problems: Problems) -> dict:
    if shape is not None:
        check_required(shape, params, "", problems)
    problems.raise_if_any()
    return params


def located_output(shape: StructureShape | None, result: dict) -> tuple[int | None, list]:
    """(status from a statusCode member, headers) for an output or error shape."""
    status, headers = None, []
    if shape is None:
        return status, headers
    for name, member in shape.members.items():
        where = member.serialization.get("location")
        value = result.get(name)
        if where is None or value is None:
            continue
        wire = member.serialization.get("name", name)
        if where == "statusCode":
            status = int(value)
        elif where == "header":
            if member.type_name == "list":
                headers.append((wire, ",".join(to_text(member.member, v, "rfc822") for v in value)))
            else:
                headers.append((wire, to_text(member, value, "rfc822")))
        elif where == "headers":
            headers.extend((f"{wire}{k}", str(v)) for k, v in value.items())
    return status, headers


def response_head(
    operation: OperationModel, result: dict, request_id_header: str, request_id: str
) -> tuple[StructureShape | None, int, list, str | None]:
    """What every REST response starts with: (output shape, status, headers, payload).

    The status is the member bound to the status code, else the model's responseCode;
    the headers carry the request id and the members bound to headers; the payload is
    the name of the member that is the whole body, if the shape has one.
    """
    shape = operation.output_shape
    located_status, headers = located_output(shape, result)
    status = located_status or operation.http.get("responseCode", 200)
    payload = shape.serialization.get("payload") if shape else None
    return shape, status, [(request_id_header, request_id), *headers], payload


def error_shape(model: ServiceModel, code: str) -> StructureShape | None:
    """The model's shape for an error code (by shape name or its declared code)."""
    for shape in model.error_shapes:
        if shape.name == code or shape.metadata.get("error", {}).get("code") == code:
            return shape
    return None


def error_status(model: ServiceModel, err: Exception, shape: StructureShape | None) -> int:
    explicit = getattr(err, "status", None)
    if explicit:
        return explicit
    if shape is not None and "httpStatusCode" in shape.metadata.get("error", {}):
        return int(shape.metadata["error"]["httpStatusCode"])
    return int(getattr(err, "default_status", 400))
