"""The AWS query protocol (CloudWatch as boto3 <= 1.3x speaks it): form in, XML out.

A request is ``POST /`` with a form body ``Action=Op&Version=...&A.B.member.1.C=v``;
the flat keys are read back into the operation's input shape through a tree of key
segments, so a 1000-datum PutMetricData is one pass, not a scan per member. The
answer is ``<OpResponse><OpResult>...</OpResult><ResponseMetadata>`` as botocore's
QueryParser reads it; errors are ``<ErrorResponse><Error><Code>``.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree

from botocore.model import OperationModel, ServiceModel, Shape

from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol import rest
from panoptes.cloud.protocol.shapes import (
    Problems,
    cannot_parse,
    check_constraints,
    check_required,
    from_text,
    timestamp_to_wire,
)
from panoptes.cloud.protocol.wire import WireError, WireRequest, WireResponse

FORM = "application/x-www-form-urlencoded"
XML = "text/xml"

#: A node of the key tree: child segments, and the value given for the key itself.
_VALUE = object()


def _key_tree(pairs: list[tuple[str, str]]) -> dict[Any, Any]:
    root: dict[Any, Any] = {}
    for key, value in pairs:
        node = root
        for segment in key.split("."):
            node = node.setdefault(segment, {})
        node[_VALUE] = value
    return root


class QueryProtocol:
    name = "query"

    def __init__(self, model: ServiceModel) -> None:
        self.model = model
        self.namespace = model.metadata.get("xmlNamespace", "")

    # ---- request ---------------------------------------------------------------------

    def parse(self, request: WireRequest) -> tuple[OperationModel, dict[str, Any]]:
        try:
            text = request.body.decode("utf-8") if request.body else request.query
        except UnicodeDecodeError:
            raise cannot_parse("The request body is not UTF-8 form data") from None
        pairs = parse_qsl(text, keep_blank_values=True)
        fields = dict(pairs)
        action = fields.get("Action", "")
        if request.method not in ("POST", "GET") or action not in self.model.operation_names:
            raise WireError(
                "InvalidAction",
                f"No {self.model.service_name} operation named {action!r} (the Action field)",
                status=400,
            )
        operation = self.model.operation_model(action)
        shape = operation.input_shape
        if shape is None:
            return operation, {}
        problems = Problems()
        tree = _key_tree([(k, v) for k, v in pairs if k not in ("Action", "Version")])
        params = self._structure(shape, tree, "", problems)
        problems.raise_if_any()
        return operation, params

    def _read(self, shape: Shape, node: dict[Any, Any], path: str, problems: Problems) -> Any:
        kind = shape.type_name
        if kind == "structure":
            return self._structure(shape, node, path, problems)
        if kind == "list":
            return self._list(shape, node, path, problems)
        if kind == "map":
            return self._map(shape, node, path, problems)
        if _VALUE not in node:
            problems.add(path, "Must be a single value, not a group of fields")
            return None
        return from_text(shape, node[_VALUE], path, problems)

    def _structure(self, shape: Shape, node: dict, path: str, problems: Problems) -> dict:
        out: dict[str, Any] = {}
        for name, member in shape.members.items():
            wire = member.serialization.get("name", name)
            child = node.get(wire)
            if child is None:
                continue
            sub = f"{path}.{name}" if path else name
            value = self._read(member, child, sub, problems)
            if value is not None:
                out[name] = value
        check_required(shape, out, path, problems)
        return out

    def _list(self, shape: Shape, node: dict, path: str, problems: Problems) -> list | None:
        if node.get(_VALUE) == "" and len(node) == 1:
            return []  # "Prefix=" is how the query protocol sends an empty list
        items_node = (
            node
            if shape.serialization.get("flattened")
            else node.get(shape.member.serialization.get("name", "member"), {})
        )
        items = []
        for index in sorted((k for k in items_node if _is_index(k)), key=int):
            value = self._read(shape.member, items_node[index], f"{path}.{index}", problems)
            if value is not None:
                items.append(value)
        check_constraints(shape, items, path, problems)
        return items

    def _map(self, shape: Shape, node: dict, path: str, problems: Problems) -> dict | None:
        entries = node if shape.serialization.get("flattened") else node.get("entry", {})
        key_name = shape.key.serialization.get("name", "key")
        value_name = shape.value.serialization.get("name", "value")
        out = {}
        for index in sorted((k for k in entries if _is_index(k)), key=int):
            entry = entries[index]
            if key_name not in entry or value_name not in entry:
                problems.add(f"{path}.{index}", "A map entry needs both a key and a value")
                continue
            key = self._read(shape.key, entry[key_name], f"{path}.{index}", problems)
            value = self._read(shape.value, entry[value_name], f"{path}.{index}", problems)
            if key is not None and value is not None:
                out[key] = value
        check_constraints(shape, out, path, problems)
        return out

    # ---- response --------------------------------------------------------------------

    def serialize(
        self, operation: OperationModel, result: dict[str, Any], request_id: str
    ) -> WireResponse:
        root = ElementTree.Element(f"{operation.name}Response", xmlns=self.namespace)
        shape = operation.output_shape
        if shape is not None:
            wrapper = shape.serialization.get("resultWrapper", f"{operation.name}Result")
            _write_members(ElementTree.SubElement(root, wrapper), shape, result)
        metadata = ElementTree.SubElement(root, "ResponseMetadata")
        ElementTree.SubElement(metadata, "RequestId").text = request_id
        return _xml_response(200, root, request_id)

    def serialize_error(self, err: ServiceError, request_id: str) -> WireResponse:
        shape = rest.error_shape(self.model, err.code)
        code = err.code
        if shape is not None:
            code = shape.metadata.get("error", {}).get("code", code)
        status = rest.error_status(self.model, err, shape)
        root = ElementTree.Element("ErrorResponse", xmlns=self.namespace)
        error = ElementTree.SubElement(root, "Error")
        ElementTree.SubElement(error, "Type").text = "Receiver" if status >= 500 else "Sender"
        ElementTree.SubElement(error, "Code").text = code
        ElementTree.SubElement(error, "Message").text = err.message
        ElementTree.SubElement(root, "RequestId").text = request_id
        return _xml_response(status, root, request_id)


def _is_index(key: Any) -> bool:
    return isinstance(key, str) and key.isdigit()


def _xml_response(status: int, root: ElementTree.Element, request_id: str) -> WireResponse:
    body = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    headers = [("x-amzn-RequestId", request_id), ("Content-Type", XML)]
    return WireResponse(status, headers, body)


def _write_members(parent: ElementTree.Element, shape: Shape, value: dict[str, Any]) -> None:
    for name, member in shape.members.items():
        item = value.get(name)
        if item is not None:
            _write(parent, member, member.serialization.get("name", name), item)


def _write(parent: ElementTree.Element, shape: Shape, tag: str, value: Any) -> None:
    kind = shape.type_name
    if kind == "list":
        member_tag = shape.member.serialization.get("name", "member")
        if shape.serialization.get("flattened"):
            for item in value:
                _write(parent, shape.member, tag, item)
            return
        holder = ElementTree.SubElement(parent, tag)
        for item in value:
            _write(holder, shape.member, member_tag, item)
        return
    if kind == "map":
        holder = ElementTree.SubElement(parent, tag)
        for key, item in value.items():
            entry = ElementTree.SubElement(holder, "entry")
            _write(entry, shape.key, shape.key.serialization.get("name", "key"), key)
            _write(entry, shape.value, shape.value.serialization.get("name", "value"), item)
        return
    node = ElementTree.SubElement(parent, tag)
    if kind == "structure":
        _write_members(node, shape, value)
    elif kind == "boolean":
        node.text = "true" if value else "false"
    elif kind == "timestamp":
        fmt = shape.serialization.get("timestampFormat", "iso8601")
        node.text = str(timestamp_to_wire(value, fmt))
    elif kind == "blob":
        raw = value.encode() if isinstance(value, str) else bytes(value)
        node.text = base64.b64encode(raw).decode("ascii")
    elif kind in ("float", "double"):
        node.text = repr(float(value))
    else:
        node.text = str(value)
