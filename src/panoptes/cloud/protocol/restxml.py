"""rest-xml (the S3 subset): routing, XML payloads and S3's error document.

Only the operations the S3 front implements are routable; anything else gets S3's
own ``NotImplemented`` answer rather than a guess.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from typing import Any
from xml.sax.saxutils import escape

from botocore.model import OperationModel, ServiceModel, Shape

from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol import rest
from panoptes.cloud.protocol.shapes import Problems, from_text, to_text
from panoptes.cloud.protocol.wire import WireError, WireRequest, WireResponse

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
#: Root element names of S3's XML answers (the model leaves them implicit).
ROOTS = {
    "ListObjectsV2": "ListBucketResult",
    "CreateMultipartUpload": "InitiateMultipartUploadResult",
    "CompleteMultipartUpload": "CompleteMultipartUploadResult",
}


class RestXmlProtocol:
    name = "rest-xml"

    def __init__(self, model: ServiceModel, operations: Iterable[str]) -> None:
        self.model = model
        self.router = rest.RestRouter(model, operations)

    def parse(self, request: WireRequest) -> tuple[OperationModel, dict[str, Any]]:
        try:
            operation, labels = self.router.match(
                request.method, request.path, request.query_dict()
            )
        except WireError as exc:
            raise WireError(
                "NotImplemented", f"{exc.message}: this S3 request is not supported", status=501
            ) from None
        shape = operation.input_shape
        problems = Problems()
        params = rest.parse_located(shape, request, labels, problems)
        payload_name = shape.serialization.get("payload") if shape else None
        if payload_name:
            member = shape.members[payload_name]
            if member.type_name in ("blob", "string"):
                # Streaming payloads stay a file: the handler copies them to the store.
                params[payload_name] = request.body_file or request.body
            elif _has_content(request):
                params[payload_name] = self._xml_payload(member, request, problems)
        try:
            return operation, rest.finish(shape, params, problems)
        except ServiceError as exc:
            raise WireError("InvalidArgument", exc.message, status=400) from None

    def _xml_payload(self, shape: Shape, request: WireRequest, problems: Problems) -> Any:
        data = request.body if request.body_file is None else request.body_file.read()
        try:
            root = ET.fromstring(data)
        except ET.ParseError:
            raise WireError(
                "MalformedXML",
                "The XML you provided was not well-formed or did not validate against our "
                "published schema",
                status=400,
            ) from None
        return from_xml(shape, root, shape.name, problems)

    def serialize(
        self, operation: OperationModel, result: dict[str, Any], request_id: str
    ) -> WireResponse:
        shape, status, headers, payload_name = rest.response_head(
            operation, result, "x-amz-request-id", request_id
        )
        # GetObject with a Range answers 206; the model has no member for that.
        status = result.get("StatusCode") or status
        if payload_name:
            # GetObject: the body is the object (bytes or an iterator of chunks).
            return WireResponse(status, headers, result.get(payload_name) or b"")
        if shape is None or not any(
            "location" not in m.serialization for m in shape.members.values()
        ):
            return WireResponse(status, headers, b"")
        root = ROOTS.get(operation.name, f"{operation.name}Result")
        body = f'<?xml version="1.0" encoding="UTF-8"?>\n<{root} xmlns="{S3_NS}">'
        body += "".join(to_xml(shape, result)) + f"</{root}>"
        headers.append(("Content-Type", "application/xml"))
        return WireResponse(status, headers, body.encode())

    def serialize_error(
        self, err: ServiceError, request_id: str, *, head: bool = False
    ) -> WireResponse:
        code = "InvalidArgument" if err.code == "ValidationException" else err.code
        shape = rest.error_shape(self.model, code)
        status = rest.error_status(self.model, err, shape)
        headers = [("x-amz-request-id", request_id)]
        retry_after = getattr(err, "retry_after", None)
        if retry_after is not None:
            headers.append(("Retry-After", str(max(1, round(retry_after)))))
        if head:
            # HEAD answers carry no body; clients read the status alone.
            return WireResponse(status, headers, b"")
        extra = "".join(
            f"<{k}>{escape(str(v))}</{k}>"
            for k, v in err.fields.items()
            if isinstance(v, str | int) and k.isidentifier()
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{escape(code)}</Code><Message>{escape(err.message)}</Message>"
            f"{extra}<RequestId>{escape(request_id)}</RequestId></Error>"
        )
        headers.append(("Content-Type", "application/xml"))
        return WireResponse(status, headers, body.encode())


def _has_content(request: WireRequest) -> bool:
    if request.body_file is None:
        return bool(request.body.strip())
    size = request.body_file.seek(0, 2)
    request.body_file.seek(0)
    return size > 0


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def from_xml(shape: Shape, node: ET.Element, path: str, problems: Problems) -> Any:
    kind = shape.type_name
    if kind == "structure":
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            children = [c for c in node if _local(c.tag) == wire]
            if not children:
                continue
            if member.type_name == "list" and member.serialization.get("flattened"):
                out[name] = [
                    from_xml(member.member, c, f"{path}.{name}", problems) for c in children
                ]
            else:
                out[name] = from_xml(member, children[0], f"{path}.{name}", problems)
        rest.check_required(shape, out, path, problems)
        return out
    if kind == "list":
        return [from_xml(shape.member, c, path, problems) for c in node]
    return from_text(shape, (node.text or "").strip(), path, problems)


def to_xml(shape: Shape, value: Any, name: str | None = None) -> list[str]:
    """XML fragments for ``value``; structures emit only their body members."""
    kind = shape.type_name
    if kind == "structure":
        parts = []
        for member_name, member in shape.members.items():
            if "location" in member.serialization or value.get(member_name) is None:
                continue
            wire = member.serialization.get("name", member_name)
            item = value[member_name]
            if member.type_name == "list" and member.serialization.get("flattened"):
                for entry in item:
                    parts.extend(to_xml(member.member, entry, wire))
            else:
                parts.extend(to_xml(member, item, wire))
        inner = "".join(parts)
        return [f"<{name}>{inner}</{name}>"] if name else [inner]
    if kind == "list":
        child = shape.member.serialization.get("name", "member")
        inner = "".join(p for v in value for p in to_xml(shape.member, v, child))
        return [f"<{name}>{inner}</{name}>"]
    return [f"<{name}>{escape(to_text(shape, value, 'iso8601'))}</{name}>"]
