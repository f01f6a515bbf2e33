"""Hostile input never makes the server fail (500) or leak a traceback."""

from __future__ import annotations

import json
import re
from urllib.parse import quote

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_examples import example
from protocol_server import ADMIN, CREDENTIALS, CannedPanorama, serve

from panoptes.cloud.app import NO_LIMITS, create_app
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.protocol.models import load_service_model
from panoptes.cloud.protocol.restjson import RestJsonProtocol
from panoptes.cloud.protocol.wire import WireRequest
from panoptes.cloud.storage.filesystem import FilesystemStore

MODEL = load_service_model("panorama")
PROTOCOL = RestJsonProtocol(MODEL)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def _path_for(operation: str, label: str) -> str:
    uri = MODEL.operation_model(operation).http["requestUri"]
    return re.sub(r"\{[^}]+\}", quote(label, safe=""), uri)


def _mutated_body(operation: str, draw_value, key: str | None) -> bytes:
    body = {}
    shape = MODEL.operation_model(operation).input_shape
    for name, member in shape.members.items():
        if "location" not in member.serialization:
            body[name] = example(member)
    if key is not None:
        body[key] = draw_value
    return json.dumps(body).encode()


@pytest.mark.parametrize("operation", MODEL.operation_names)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    label=st.text(max_size=30),
    query=st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=4),
    value=json_values,
    which=st.integers(min_value=0, max_value=20),
    raw=st.one_of(st.none(), st.binary(max_size=64)),
)
def test_parser_answers_only_with_client_errors(operation, label, query, value, which, raw):
    op = MODEL.operation_model(operation)
    members = [n for n, m in op.input_shape.members.items() if "location" not in m.serialization]
    key = members[which % len(members)] if members and which < 15 else None
    body = raw if raw is not None else _mutated_body(operation, value, key)
    query_string = "&".join(f"{quote(k)}={quote(v)}" for k, v in query)
    request = WireRequest(op.http["method"], _path_for(operation, label), query_string, [], body)
    try:
        PROTOCOL.parse(request)
    except ServiceError as err:
        status = getattr(err, "status", None) or 400
        assert 400 <= status < 500, err


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    app = create_app(
        {"panorama": CannedPanorama()},
        CREDENTIALS,
        FilesystemStore(tmp_path_factory.mktemp("store")),
        limits=NO_LIMITS,
    )
    with serve(app) as base, httpx.Client(base_url=base) as http:
        yield http


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    path=st.text(max_size=40).map(lambda t: "/" + quote(t, safe="/")),
    query=st.text(max_size=30).map(lambda t: quote(t, safe="=&")),
    body=st.one_of(st.binary(max_size=200), json_values.map(lambda v: json.dumps(v).encode())),
)
@pytest.mark.e2e
def test_signed_garbage_through_the_app_is_never_a_500(client, method, path, query, body):
    url = f"{client.base_url}".rstrip("/") + path + (f"?{query}" if query else "")
    request = AWSRequest(method=method, url=url, data=body)
    SigV4Auth(
        Credentials(ADMIN.access_key_id, ADMIN.secret_access_key), "panorama", "us-east-1"
    ).add_auth(request)
    response = client.request(method, url, content=body, headers=dict(request.headers.items()))
    assert response.status_code < 500, response.text
    assert "Traceback" not in response.text
