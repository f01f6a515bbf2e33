"""Panorama's rest-json wire, checked with botocore's own serializer and parser.

For every operation: botocore serializes a request, we parse it (same params), we
serialize a response, botocore parses it (same data). For every error shape:
botocore surfaces the code, the message and the modeled fields.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from botocore.awsrequest import HeadersDict
from botocore.parsers import create_parser
from botocore.serialize import create_serializer
from protocol_examples import example

from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol.models import load_service_model
from panoptes.cloud.protocol.restjson import RestJsonProtocol
from panoptes.cloud.protocol.wire import WireError, WireRequest

MODEL = load_service_model("panorama")
PROTOCOL = RestJsonProtocol(MODEL)


def botocore_request(operation: str, params: dict) -> WireRequest:
    """The request botocore's serializer would put on the wire."""
    request = create_serializer("rest-json").serialize_to_request(
        params, MODEL.operation_model(operation)
    )
    query = "&".join(
        f"{quote(k, safe='-_.~')}={quote(str(v), safe='-_.~')}"
        for k, values in request["query_string"].items()
        for v in (values if isinstance(values, list) else [values])
    )
    body = request["body"]
    return WireRequest(
        request["method"],
        request["url_path"],
        query,
        [(k.lower(), v) for k, v in request["headers"].items()],
        body if isinstance(body, bytes) else body.encode(),
    )


def botocore_parse(response, shape) -> dict:
    parsed = create_parser("rest-json").parse(
        {
            "status_code": response.status,
            "headers": HeadersDict(response.headers),
            "body": response.body,
        },
        shape,
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


def test_the_model_has_all_34_operations():
    assert len(MODEL.operation_names) == 34


@pytest.mark.parametrize("operation", MODEL.operation_names)
def test_request_round_trip(operation):
    params = example(MODEL.operation_model(operation).input_shape)
    parsed_op, parsed = PROTOCOL.parse(botocore_request(operation, params))
    assert parsed_op.name == operation
    assert parsed == params


@pytest.mark.parametrize("operation", MODEL.operation_names)
def test_only_required_members_round_trip(operation):
    shape = MODEL.operation_model(operation).input_shape
    full = example(shape)
    params = {k: full[k] for k in shape.required_members}
    assert PROTOCOL.parse(botocore_request(operation, params))[1] == params


@pytest.mark.parametrize("operation", MODEL.operation_names)
def test_response_round_trip(operation):
    op = MODEL.operation_model(operation)
    result = example(op.output_shape)
    response = PROTOCOL.serialize(op, result, "req-1")
    assert response.status == 200
    assert response.header("x-amzn-RequestId") == "req-1"
    assert botocore_parse(response, op.output_shape) == result


ERROR_SHAPES = sorted(MODEL.error_shapes, key=lambda s: s.name)


@pytest.mark.parametrize("shape", ERROR_SHAPES, ids=lambda s: s.name)
def test_error_round_trip(shape):
    fields = {k: v for k, v in example(shape).items() if k != "Message"}
    err = ServiceError(shape.name, "it went wrong", **fields)
    response = PROTOCOL.serialize_error(err, "req-2")
    assert response.status == shape.metadata["error"]["httpStatusCode"]
    parsed = create_parser("rest-json").parse(
        {
            "status_code": response.status,
            "headers": HeadersDict(response.headers),
            "body": response.body,
        },
        None,
    )
    assert parsed["Error"] == {"Code": shape.name, "Message": "it went wrong"}
    assert parsed["ResponseMetadata"]["RequestId"] == "req-2"
    # What botocore's client adds for modeled errors: the shape parsed from the body.
    modeled = botocore_parse(response, shape)
    assert modeled == {"Message": "it went wrong", **fields}


def test_unmodeled_error_keeps_code_message_and_default_status():
    from panoptes.cloud.errors import Throttled

    response = PROTOCOL.serialize_error(Throttled(retry_after=2), "r")
    assert response.status == 429
    assert response.header("x-amzn-ErrorType") == "ThrottlingException"
    assert response.header("Retry-After") == "2"
    assert json.loads(response.body)["message"] == "Rate exceeded"


def parse_error(request: WireRequest) -> ServiceError:
    with pytest.raises(ServiceError) as caught:
        PROTOCOL.parse(request)
    return caught.value


def test_bad_enum_names_the_field_and_the_allowed_values():
    request = botocore_request("ListDevices", {"SortBy": "COLOR"})
    err = parse_error(request)
    assert err.code == "ValidationException"
    assert err.fields["Reason"] == "FIELD_VALIDATION_FAILED"
    [field] = err.fields["Fields"]
    assert field["Name"] == "SortBy"
    assert "DEVICE_ID" in field["Message"] and "COLOR" in field["Message"]
    assert "SortBy" in err.message


def test_missing_required_members_are_all_listed():
    request = WireRequest("POST", "/packages/import-jobs", body=b"{}")
    err = parse_error(request)
    names = {f["Name"] for f in err.fields["Fields"]}
    assert names == {"ClientToken", "InputConfig", "JobType", "OutputConfig"}


def test_wrong_types_and_ranges_are_validation_errors():
    body = json.dumps({"Name": 5, "Tags": "x", "Networking": {"Ethernet0": []}}).encode()
    err = parse_error(WireRequest("POST", "/devices", body=body))
    names = {f["Name"] for f in err.fields["Fields"]}
    assert {"Name", "Tags", "NetworkingConfiguration"} <= names | {"NetworkingConfiguration"}
    err = parse_error(WireRequest("GET", "/devices", "MaxResults=26"))
    assert err.fields["Fields"][0]["Name"] == "MaxResults"
    err = parse_error(WireRequest("GET", "/devices", "MaxResults=lots"))
    assert "whole number" in err.fields["Fields"][0]["Message"]


def test_pattern_and_length_are_enforced_on_uri_labels():
    err = parse_error(WireRequest("GET", "/devices/" + quote("bad id!", safe="")))
    assert err.fields["Fields"][0]["Name"] == "DeviceId"
    assert "pattern" in err.fields["Fields"][0]["Message"]


@pytest.mark.parametrize("body", [b"{", b"[1, 2]", b"\xff\xfe", b'"text"'])
def test_malformed_json_is_a_validation_error(body):
    err = parse_error(WireRequest("POST", "/packages", body=body))
    assert err.code == "ValidationException"
    assert err.fields["Reason"] == "CANNOT_PARSE"


def test_unknown_body_members_are_ignored():
    params = {"PackageName": "pkg", "Unknown": {"x": 1}}
    _, parsed = PROTOCOL.parse(WireRequest("POST", "/packages", body=json.dumps(params).encode()))
    assert parsed == {"PackageName": "pkg"}


def test_unknown_route_and_wrong_method():
    with pytest.raises(WireError) as caught:
        PROTOCOL.parse(WireRequest("GET", "/nothing-here"))
    assert caught.value.status == 404
    with pytest.raises(WireError) as caught:
        PROTOCOL.parse(WireRequest("PATCH", "/devices"))
    assert caught.value.status == 405


def test_arn_with_slashes_in_a_single_segment_label():
    arn = "arn:aws:panorama:us-east-1:123456789012:device/device-1"
    request = botocore_request("ListTagsForResource", {"ResourceArn": arn})
    assert "%2F" in request.path
    assert PROTOCOL.parse(request)[1] == {"ResourceArn": arn}


def test_repeated_query_keys_become_a_list():
    arn = "arn:aws:panorama:us-east-1:123456789012:device/device-1"
    params = {"ResourceArn": arn, "TagKeys": ["a", "b c", "d+e"]}
    assert PROTOCOL.parse(botocore_request("UntagResource", params))[1] == params
