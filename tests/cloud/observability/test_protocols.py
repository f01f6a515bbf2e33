"""query and smithy-rpc-v2-cbor round trips: botocore's own serializers make the request,
our protocols parse it; ours answer, botocore's parsers read it back."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import botocore.parsers
import botocore.serialize
import pytest
from botocore.awsrequest import prepare_request_dict

from panoptes.cloud.errors import ServiceError, ValidationError
from panoptes.cloud.protocol.cbor import RpcV2CborProtocol
from panoptes.cloud.protocol.models import load_service_model
from panoptes.cloud.protocol.negotiate import NegotiatedProtocol
from panoptes.cloud.protocol.query import QueryProtocol
from panoptes.cloud.protocol.wire import WireRequest

T = datetime(2026, 11, 25, 14, 0, 30, 500000, tzinfo=UTC)
DATUM = {
    "MetricName": "AverageInferenceTime",
    "Dimensions": [{"Name": "Application Name", "Value": "aws-panorama-sample"}],
    "Timestamp": T,
    "Value": 12.5,
    "Unit": "Milliseconds",
}


def wire(protocol: str, service: str, operation: str, params: dict[str, Any]) -> WireRequest:
    """The request botocore would send for ``operation`` in ``protocol``."""
    op = load_service_model(service).operation_model(operation)
    request = botocore.serialize.create_serializer(protocol).serialize_to_request(params, op)
    prepare_request_dict(request, endpoint_url="http://127.0.0.1")
    body = request["body"]
    if isinstance(body, dict):
        body = urlencode(body).encode()
    headers = [(k.lower(), v) for k, v in request["headers"].items()]
    return WireRequest("POST", request["url_path"], "", headers, body or b"")


def parsed(protocol: str, service: str, operation: str, response: Any) -> dict[str, Any]:
    op = load_service_model(service).operation_model(operation)
    raw = {
        "status_code": response.status,
        "headers": {k.lower(): v for k, v in response.headers},
        "body": response.body,
    }
    return botocore.parsers.create_parser(protocol).parse(raw, op.output_shape)


def test_query_put_metric_data_parses_as_botocore_wrote_it() -> None:
    model = load_service_model("cloudwatch")
    data = [DATUM, {**DATUM, "Dimensions": []}]
    request = wire(
        "query",
        "cloudwatch",
        "PutMetricData",
        {"Namespace": "AWSPanoramaApplication", "MetricData": data},
    )
    op, params = QueryProtocol(model).parse(request)
    assert op.name == "PutMetricData"
    assert params["MetricData"][0] == DATUM
    assert params["MetricData"][1]["Dimensions"] == []  # "...Dimensions=" is an empty list


def test_query_maps_and_answers_read_back_by_botocore() -> None:
    sns = load_service_model("sns")
    attributes = {"DisplayName": "alarms", "Policy": "{}"}
    topic = {"Name": "t", "Attributes": attributes, "Tags": [{"Key": "a", "Value": "b"}]}
    _, params = QueryProtocol(sns).parse(wire("query", "sns", "CreateTopic", topic))
    assert params == topic

    cw = QueryProtocol(load_service_model("cloudwatch"))
    op = cw.model.operation_model("GetMetricStatistics")
    point = {"Timestamp": T, "Average": 12.5, "SampleCount": 2.0, "Unit": "Milliseconds"}
    response = cw.serialize(op, {"Label": "x", "Datapoints": [point]}, "req-1")
    out = parsed("query", "cloudwatch", "GetMetricStatistics", response)
    assert out["Label"] == "x" and out["Datapoints"] == [point]
    assert out["ResponseMetadata"]["RequestId"] == "req-1"


def test_query_errors_and_bad_actions() -> None:
    cw = QueryProtocol(load_service_model("cloudwatch"))
    response = cw.serialize_error(ServiceError("InvalidParameterValueException", "bad"), "r")
    op = cw.model.operation_model("PutMetricData")
    raw = {"status_code": response.status, "headers": {}, "body": response.body}
    error = botocore.parsers.create_parser("query").parse(raw, op.output_shape)["Error"]
    assert (response.status, error["Code"], error["Message"]) == (
        400,
        "InvalidParameterValue",
        "bad",
    )
    with pytest.raises(ServiceError, match="Action"):
        cw.parse(WireRequest("POST", "/", "", [], b"Action=DropTables&Version=2010-08-01"))
    with pytest.raises(ValidationError, match="MetricName"):
        body = b"Action=PutMetricData&Namespace=N&MetricData.member.1.Value=1"
        cw.parse(WireRequest("POST", "/", "", [], body))


def test_cbor_round_trip_with_timestamps_and_doubles() -> None:
    cbor = RpcV2CborProtocol(load_service_model("cloudwatch"))
    request = wire("smithy-rpc-v2-cbor", "cloudwatch", "PutMetricData",
                   {"Namespace": "AWSPanoramaApplication", "MetricData": [DATUM]})  # fmt: skip
    assert request.path == "/service/GraniteServiceVersion20100801/operation/PutMetricData"
    _, params = cbor.parse(request)
    assert params["MetricData"] == [DATUM]

    op = cbor.model.operation_model("GetMetricData")
    result = {"MetricDataResults": [{"Id": "q", "Label": "l", "Timestamps": [T],
                                     "Values": [0.1], "StatusCode": "Complete"}]}  # fmt: skip
    out = parsed(
        "smithy-rpc-v2-cbor", "cloudwatch", "GetMetricData", cbor.serialize(op, result, "r")
    )
    assert out["MetricDataResults"] == result["MetricDataResults"]

    with pytest.raises(ValidationError, match="CBOR"):
        cbor.parse(WireRequest("POST", request.path, "", request.headers, b"\xff\x00garbage"))


def test_negotiation_picks_the_clients_protocol_and_gunzips() -> None:
    import gzip

    negotiated = NegotiatedProtocol(load_service_model("cloudwatch"))
    for protocol in ("smithy-rpc-v2-cbor", "json", "query"):
        request = wire(protocol, "cloudwatch", "ListMetrics", {"Namespace": "N"})
        chosen = negotiated.select(request)
        assert chosen.name == protocol
        request.headers.append(("content-encoding", "gzip"))
        request.body = gzip.compress(request.body)
        _, params = chosen.parse(request)
        assert params == {"Namespace": "N"}
    # Errors of the cbor and json protocols carry the query-era code for botocore.
    cbor = negotiated.by_name["smithy-rpc-v2-cbor"]
    response = cbor.serialize_error(ValidationError("Missing required field X"), "r")
    assert ("x-amzn-query-error", "MissingParameter;Sender") in response.headers
