"""rest-json (Panorama, IoT data): parse requests and write responses from the model.

Errors are written the way botocore's RestJSONParser reads them: the code in the
``x-amzn-ErrorType`` header, the message under ``message`` (and ``Message``, the
member name Panorama's error shapes use), every modeled member in the body so
``ClientError.response`` carries fields such as ``ResourceId``.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.model import OperationModel, ServiceModel

from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol import rest
from panoptes.cloud.protocol.shapes import Problems, cannot_parse, from_json, structure_from_json
from panoptes.cloud.protocol.shapes import to_json as shape_to_json
from panoptes.cloud.protocol.wire import WireRequest, WireResponse

JSON = "application/json"


class RestJsonProtocol:
    name = "rest-json"

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.router = rest.RestRouter(model)

    def parse(self, request: WireRequest) -> tuple[OperationModel, dict[str, Any]]:
        operation, labels = self.router.match(request.method, request.path, request.query_dict())
        shape = operation.input_shape
        problems = Problems()
        params = rest.parse_located(shape, request, labels, problems)
        if shape is not None:
            params.update(self._body(shape, request.body, problems))
        return operation, rest.finish(shape, params, problems)

    def _body(self, shape, body: bytes, problems: Problems) -> dict[str, Any]:
        payload_name = shape.serialization.get("payload")
        if payload_name:
            member = shape.members[payload_name]
            if member.type_name in ("blob", "string"):
                return {payload_name: body if member.type_name == "blob" else body.decode()}
            document = _decode_json(body)
            value = from_json(member, document, payload_name, problems) if document else None
            return {payload_name: value} if value is not None else {}
        document = _decode_json(body)
        if not isinstance(document, dict):
            raise cannot_parse("The request body must be a JSON object")
        return structure_from_json(shape, document, "", problems, top=True)

    def serialize(
        self, operation: OperationModel, result: dict[str, Any], request_id: str
    ) -> WireResponse:
        shape, status, headers, payload_name = rest.response_head(
            operation, result, "x-amzn-RequestId", request_id
        )
        body: bytes = b"{}"
        if payload_name:
            assert shape is not None
            member, value = shape.members[payload_name], result.get(payload_name)
            if member.type_name == "blob":
                headers.append(("Content-Type", "application/octet-stream"))
                return WireResponse(status, headers, value or b"")
            body = json.dumps(shape_to_json(member, value) if value is not None else {}).encode()
        elif shape is not None:
            body = json.dumps(shape_to_json(shape, result)).encode()
        headers.append(("Content-Type", JSON))
        return WireResponse(status, headers, body)

    def serialize_error(self, err: ServiceError, request_id: str) -> WireResponse:
        return json_error(self.model, err, request_id, header_code=True)


def _decode_json(body: bytes) -> Any:
    if not body.strip():
        return {}
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise cannot_parse(f"The request body is not valid JSON: {exc}") from None


def json_error(
    model: ServiceModel, err: ServiceError, request_id: str, *, header_code: bool
) -> WireResponse:
    """An error in the JSON protocols' shape (rest-json: code in a header too)."""
    shape = rest.error_shape(model, err.code)
    status = rest.error_status(model, err, shape)
    values = {"Message": err.message, **err.fields}
    body: dict[str, Any] = {}
    headers = [("x-amzn-RequestId", request_id), ("Content-Type", JSON)]
    if shape is not None:
        body = shape_to_json(shape, values)
        _, located = rest.located_output(shape, values)
        headers.extend(located)
    else:
        body = {k: v for k, v in values.items() if _jsonable(v)}
    body["message"] = err.message
    body.setdefault("Message", err.message)
    if header_code:
        headers.append(("x-amzn-ErrorType", err.code))
    else:
        body["__type"] = err.code
    retry_after = getattr(err, "retry_after", None)
    if retry_after is not None and not any(k.lower() == "retry-after" for k, _ in headers):
        headers.append(("Retry-After", str(max(1, round(retry_after)))))
    return WireResponse(status, headers, json.dumps(body).encode())


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True
