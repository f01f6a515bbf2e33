"""smithy-rpc-v2-cbor (CloudWatch as today's boto3 speaks it).

``POST /service/{targetPrefix}/operation/{Operation}`` with ``smithy-protocol:
rpc-v2-cbor`` and a CBOR body. cbor2 does the encoding; the shapes are walked by the
same code as JSON (shapes.py) once CBOR's native types are brought to JSON's forms
(timestamps -> epoch seconds, byte strings -> base64), so validation is written once.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

import cbor2
from botocore.model import OperationModel, ServiceModel, Shape

from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol import rest
from panoptes.cloud.protocol.shapes import Problems, cannot_parse, parse_timestamp
from panoptes.cloud.protocol.shapes import structure_from_json as _structure_from_json
from panoptes.cloud.protocol.wire import WireError, WireRequest, WireResponse

CBOR = "application/cbor"


def _json_forms(value: Any) -> Any:
    """CBOR-decoded data with timestamps and byte strings in their JSON-protocol forms."""
    if isinstance(value, dict):
        return {k: _json_forms(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_forms(v) for v in value]
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    return value


def _cbor_ready(shape: Shape | None, value: Any) -> Any:
    """Output values per shape: timestamps as aware datetimes (encoded as tag 1)."""
    if shape is None or value is None:
        return value
    kind = shape.type_name
    if kind == "structure":
        out = {}
        for name, member in shape.members.items():
            item = value.get(name)
            if item is not None:
                out[member.serialization.get("name", name)] = _cbor_ready(member, item)
        return out
    if kind == "list":
        return [_cbor_ready(shape.member, v) for v in value]
    if kind == "map":
        return {str(k): _cbor_ready(shape.value, v) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, UTC)
        return parse_timestamp(str(value))
    if kind in ("float", "double"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind == "blob":
        return value.encode() if isinstance(value, str) else bytes(value)
    return value


class RpcV2CborProtocol:
    name = "smithy-rpc-v2-cbor"

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.prefix = model.metadata.get("targetPrefix", model.service_name)

    def parse(self, request: WireRequest) -> tuple[OperationModel, dict[str, Any]]:
        parts = request.path.strip("/").split("/")
        ok = (
            request.method == "POST"
            and len(parts) == 4
            and parts[0] == "service"
            and parts[1] == self.prefix
            and parts[2] == "operation"
            and parts[3] in self.model.operation_names
        )
        if not ok:
            raise WireError(
                "UnknownOperationException",
                f"No {self.model.service_name} operation at {request.path} "
                f"(expected /service/{self.prefix}/operation/NAME)",
                status=404,
            )
        operation = self.model.operation_model(parts[3])
        document: Any = {}
        if request.body:
            try:
                document = cbor2.loads(request.body)
            except (cbor2.CBORDecodeError, ValueError) as exc:
                raise cannot_parse(f"The request body is not valid CBOR: {exc}") from None
        if not isinstance(document, dict):
            raise cannot_parse("The request body must be a CBOR map")
        shape = operation.input_shape
        problems = Problems()
        params = _structure_from_json(shape, _json_forms(document), "", problems) if shape else {}
        problems.raise_if_any()
        return operation, params

    def _headers(self, request_id: str) -> list[tuple[str, str]]:
        return [
            ("x-amzn-RequestId", request_id),
            ("smithy-protocol", "rpc-v2-cbor"),
            ("Content-Type", CBOR),
        ]

    def serialize(
        self, operation: OperationModel, result: dict[str, Any], request_id: str
    ) -> WireResponse:
        body = _cbor_ready(operation.output_shape, result) if operation.output_shape else {}
        data = cbor2.dumps(body, datetime_as_timestamp=True)
        return WireResponse(200, self._headers(request_id), data)

    def serialize_error(self, err: ServiceError, request_id: str) -> WireResponse:
        shape = rest.error_shape(self.model, err.code)
        status = rest.error_status(self.model, err, shape)
        body: dict[str, Any] = {}
        if shape is not None:
            body = _cbor_ready(shape, {"Message": err.message, **err.fields})
        body["__type"] = shape.name if shape is not None else err.code
        body["message"] = err.message
        return WireResponse(status, self._headers(request_id), cbor2.dumps(body))
