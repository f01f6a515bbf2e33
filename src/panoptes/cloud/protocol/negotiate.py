"""Services that botocore speaks in several protocols (CloudWatch: cbor, json, query).

botocore picks the first protocol of the model's ``protocols`` list that it knows,
so boto3 1.24 sends query, some later versions json, today's smithy-rpc-v2-cbor. The
request says which one it is (``smithy-protocol`` header, ``X-Amz-Target`` header, or
neither: a form), and the answer must come back in the same one.

Such services are "awsQueryCompatible": whatever the protocol, clients expect the
error codes of the query days (``InvalidParameterValue``), carried for cbor and json
in the ``x-amzn-query-error`` header, and the protocol layer's own
``ValidationException`` becomes ``InvalidParameterValue``/``MissingParameter``.
"""

from __future__ import annotations

import zlib
from typing import Any

from botocore.model import OperationModel, ServiceModel

from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol import rest
from panoptes.cloud.protocol.cbor import RpcV2CborProtocol
from panoptes.cloud.protocol.jsonrpc import JsonRpcProtocol
from panoptes.cloud.protocol.query import QueryProtocol
from panoptes.cloud.protocol.wire import WireError, WireRequest, WireResponse

_IMPLEMENTED = {
    "smithy-rpc-v2-cbor": RpcV2CborProtocol,
    "json": JsonRpcProtocol,
    "query": QueryProtocol,
}


def speaks_several(model: ServiceModel) -> bool:
    return len(model.metadata.get("protocols", [])) > 1


class _Translated:
    """One concrete protocol with the query-compatible error conventions on top."""

    def __init__(self, inner: Any, query_compatible: bool) -> None:
        self.inner = inner
        self.model: ServiceModel = inner.model
        self.name = inner.name
        self.query_compatible = query_compatible

    def parse(self, request: WireRequest) -> tuple[OperationModel, dict[str, Any]]:
        request.body = _decompressed(request)
        return self.inner.parse(request)

    def serialize(
        self, operation: OperationModel, result: dict[str, Any], request_id: str
    ) -> WireResponse:
        return self.inner.serialize(operation, result, request_id)

    def serialize_error(self, err: ServiceError, request_id: str) -> WireResponse:
        err = _query_code(err) if self.query_compatible else err
        response = self.inner.serialize_error(err, request_id)
        if self.query_compatible and self.name != "query":
            shape = rest.error_shape(self.model, err.code)
            code = shape.metadata.get("error", {}).get("code", err.code) if shape else err.code
            fault = "Receiver" if response.status >= 500 else "Sender"
            response.headers.append(("x-amzn-query-error", f"{code};{fault}"))
        return response


def _query_code(err: ServiceError) -> ServiceError:
    # The protocol layer's own ValidationException (a field that does not fit the model)
    # was InvalidParameterValue or MissingParameter in the query days.
    if err.code != "ValidationException":
        return err
    missing = "Missing required field" in err.message
    code = "MissingRequiredParameterException" if missing else "InvalidParameterValueException"
    return ServiceError(code, err.message)


#: A compressed body may expand to at most this (PutMetricData's own limit is 1 MB).
_MAX_INFLATED = 8 << 20


def _decompressed(request: WireRequest) -> bytes:
    """The body without its Content-Encoding (botocore gzips large PutMetricData)."""
    encoding = (request.header("content-encoding") or "").strip().lower()
    if not encoding or encoding == "identity":
        return request.body
    if encoding != "gzip":
        raise WireError(
            "UnsupportedMediaType",
            f"Content-Encoding {encoding!r} is not supported here; send gzip or none",
            status=415,
        )
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        data = inflater.decompress(request.body, _MAX_INFLATED)
    except zlib.error as exc:
        raise WireError("InvalidParameterValue", f"The gzip body is corrupt: {exc}", 400) from None
    if inflater.unconsumed_tail:
        raise WireError(
            "RequestEntityTooLarge",
            f"The request body inflates to more than {_MAX_INFLATED} bytes",
            status=413,
        )
    return data


class NegotiatedProtocol:
    """Chooses, per request, the concrete protocol the client spoke."""

    name = "negotiated"

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        compatible = "awsQueryCompatible" in model.metadata
        self.by_name = {
            name: _Translated(_IMPLEMENTED[name](model), compatible)
            for name in model.metadata.get("protocols", [model.protocol])
            if name in _IMPLEMENTED
        }
        if not self.by_name:
            raise ValueError(f"no protocol of {model.service_name} is implemented")

    def select(self, request: WireRequest) -> _Translated:
        if request.header("smithy-protocol") and "smithy-rpc-v2-cbor" in self.by_name:
            return self.by_name["smithy-rpc-v2-cbor"]
        if request.header("x-amz-target") and "json" in self.by_name:
            return self.by_name["json"]
        if "query" in self.by_name:
            return self.by_name["query"]
        return next(iter(self.by_name.values()))


__all__ = ["NegotiatedProtocol", "speaks_several"]
