"""The json protocol (CloudWatch Logs): ``POST /`` with ``X-Amz-Target: Prefix.Operation``."""

from __future__ import annotations

import json
from typing import Any

from botocore.model import OperationModel, ServiceModel

from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol.restjson import _decode_json, json_error
from panoptes.cloud.protocol.shapes import Problems, cannot_parse, structure_from_json, to_json
from panoptes.cloud.protocol.wire import WireError, WireRequest, WireResponse


class JsonRpcProtocol:
    name = "json"

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        version = model.metadata.get("jsonVersion", "1.1")
        self.content_type = f"application/x-amz-json-{version}"
        self.prefix = model.metadata.get("targetPrefix", "")

    def parse(self, request: WireRequest) -> tuple[OperationModel, dict[str, Any]]:
        target = request.header("x-amz-target") or ""
        prefix, _, name = target.rpartition(".")
        if (
            request.method != "POST"
            or prefix != self.prefix
            or name not in self.model.operation_names
        ):
            raise WireError(
                "UnknownOperationException",
                f"No {self.model.service_name} operation for target {target!r}",
                status=400,
            )
        operation = self.model.operation_model(name)
        document = _decode_json(request.body)
        if not isinstance(document, dict):
            raise cannot_parse("The request body must be a JSON object")
        problems = Problems()
        shape = operation.input_shape
        params = structure_from_json(shape, document, "", problems) if shape else {}
        problems.raise_if_any()
        return operation, params

    def serialize(
        self, operation: OperationModel, result: dict[str, Any], request_id: str
    ) -> WireResponse:
        shape = operation.output_shape
        body = to_json(shape, result) if shape is not None else {}
        headers = [("x-amzn-RequestId", request_id), ("Content-Type", self.content_type)]
        return WireResponse(200, headers, json.dumps(body).encode())

    def serialize_error(self, err: ServiceError, request_id: str) -> WireResponse:
        response = json_error(self.model, err, request_id, header_code=False)
        response.headers = [
            (k, self.content_type if k == "Content-Type" else v) for k, v in response.headers
        ]
        return response
