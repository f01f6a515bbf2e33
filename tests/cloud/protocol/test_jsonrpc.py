"""The json protocol (CloudWatch Logs), checked with botocore's serializer and parser."""

from __future__ import annotations

import json

import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from protocol_examples import example

from panoptes.cloud.errors import ResourceNotFound, ServiceError
from panoptes.cloud.protocol.jsonrpc import JsonRpcProtocol
from panoptes.cloud.protocol.models import load_service_model
from panoptes.cloud.protocol.wire import WireError, WireRequest

MODEL = load_service_model("logs")
PROTOCOL = JsonRpcProtocol(MODEL)
OPERATIONS = ["PutLogEvents", "GetLogEvents", "CreateLogGroup", "DescribeLogStreams"]


def to_wire(operation: str, params: dict) -> WireRequest:
    request = create_serializer("json").serialize_to_request(
        params, MODEL.operation_model(operation)
    )
    headers = [(k.lower(), v) for k, v in request["headers"].items()]
    return WireRequest("POST", "/", "", headers, request["body"])


def parse(response, shape):
    return create_parser("json").parse(
        {
            "status_code": response.status,
            "headers": HeadersDict(response.headers),
            "body": response.body,
        },
        shape,
    )


@pytest.mark.parametrize("operation", OPERATIONS)
def test_round_trip(operation):
    op = MODEL.operation_model(operation)
    params = example(op.input_shape)
    parsed_op, parsed = PROTOCOL.parse(to_wire(operation, params))
    assert (parsed_op.name, parsed) == (operation, params)
    result = example(op.output_shape)
    parsed_result = parse(PROTOCOL.serialize(op, result, "r"), op.output_shape)
    parsed_result.pop("ResponseMetadata")
    assert parsed_result == result


def test_errors_carry_code_in_type():
    response = PROTOCOL.serialize_error(ResourceNotFound("g", "log group"), "r")
    parsed = parse(response, None)
    assert parsed["Error"]["Code"] == "ResourceNotFoundException"
    assert response.header("content-type") == "application/x-amz-json-1.1"


def test_validation_and_unknown_targets():
    with pytest.raises(ServiceError) as caught:
        PROTOCOL.parse(
            to_wire("CreateLogGroup", {})
            if False
            else WireRequest(
                "POST", "/", "", [("x-amz-target", "Logs_20140328.CreateLogGroup")], b"{}"
            )
        )
    assert caught.value.fields["Fields"][0]["Name"] == "logGroupName"
    with pytest.raises(WireError):
        PROTOCOL.parse(WireRequest("POST", "/", "", [("x-amz-target", "Logs_20140328.Nope")]))
    body = json.dumps({"logGroupName": "g", "logStreamName": "s", "logEvents": "x"}).encode()
    target = [("x-amz-target", "Logs_20140328.PutLogEvents")]
    with pytest.raises(ServiceError):
        PROTOCOL.parse(WireRequest("POST", "/", "", target, body))
