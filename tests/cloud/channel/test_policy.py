"""The link's rules on their own: topic policy, CONNECT checks, Range, revisions."""

from __future__ import annotations

import pytest
from amqtt.mqtt.connect import ConnectPacket, ConnectPayload, ConnectVariableHeader

from panoptes import link
from panoptes.cloud.channel.access import may_access
from panoptes.cloud.channel.broker import connect_problem
from panoptes.cloud.channel.endpoint import _Refused, parse_range
from panoptes.cloud.channel.service import LinkConfigError, parse_broker
from panoptes.cloud.channel.software import SoftwareError, wheel_version
from panoptes.cloud.services.device_view import content_digest

A, B = "device-aaaa", "device-bbbb"


@pytest.mark.parametrize(
    ("identity", "topic", "allowed"),
    [
        (A, link.topic(A, link.DESIRED), True),
        (A, link.topic(A, link.REPORT), True),
        (A, f"{link.device_root(A)}/#", True),
        (A, link.topic(B, link.DESIRED), False),
        (A, f"{link.TOPIC_ROOT}/+/desired", False),
        (A, f"{link.TOPIC_ROOT}/#", False),
        (A, "#", False),
        (A, link.device_root(A), False),  # the root itself carries nothing
        (A, f"{link.device_root(A)}x/desired", False),  # a longer id is another device
        (link.BRIDGE_IDENTITY, f"{link.TOPIC_ROOT}/+/report", True),
        (link.BRIDGE_IDENTITY, link.topic(B, link.DESIRED), True),
        (link.BRIDGE_IDENTITY, "$SYS/broker/uptime", False),
        (None, link.topic(A, link.DESIRED), False),
    ],
)
def test_topic_policy(identity: str | None, topic: str, allowed: bool) -> None:
    assert may_access(identity, topic) is allowed


def _connect(client_id: str, will_topic: str | None = None) -> ConnectPacket:
    header = ConnectVariableHeader()
    payload = ConnectPayload(client_id=client_id)
    packet = ConnectPacket(variable_header=header, payload=payload)
    if will_topic:
        packet.will_flag = True
        packet.payload.will_topic = will_topic
        packet.payload.will_message = b"offline"
    return packet


def test_connect_checks_client_id_and_last_will() -> None:
    assert connect_problem(A, _connect(A, link.topic(A, link.PRESENCE))) is None
    assert "is not the certificate's device id" in connect_problem(A, _connect(B))
    # A last will on another device's topic would be published by the broker itself.
    problem = connect_problem(A, _connect(A, link.topic(B, link.DESIRED)))
    assert problem is not None and "last-will topic" in problem
    assert connect_problem(link.BRIDGE_IDENTITY, _connect(f"{link.BRIDGE_IDENTITY}-1")) is None
    assert connect_problem(link.BRIDGE_IDENTITY, _connect("someone")) is not None


@pytest.mark.parametrize(
    ("header", "span"),
    [
        (None, None),
        ("bytes=0-9", (0, 9)),
        ("bytes=10-", (10, 99)),
        ("bytes=90-200", (90, 99)),
        ("bytes=-5", (95, 99)),
    ],
)
def test_range_header(header: str | None, span: tuple[int, int] | None) -> None:
    assert parse_range(header, 100) == span


@pytest.mark.parametrize("header", ["bytes=100-", "bytes=5-2", "bytes=0-1,5-6", "items=0-1"])
def test_unsatisfiable_ranges_are_416(header: str) -> None:
    with pytest.raises(_Refused) as refused:
        parse_range(header, 100)
    assert refused.value.status == 416


def test_broker_urls() -> None:
    assert parse_broker("embedded") is None
    assert parse_broker("mqtts://broker.example:8884") == ("broker.example", 8884)
    assert parse_broker("mqtts://broker.example") == ("broker.example", 8883)
    with pytest.raises(LinkConfigError, match="mqtts://HOST:PORT"):
        parse_broker("mqtt://broker.example:1883")


def test_wheel_versions() -> None:
    from pathlib import Path

    assert wheel_version(Path("panoptes-0.2.0-py3-none-any.whl")) == "0.2.0"
    with pytest.raises(SoftwareError, match="--version"):
        wheel_version(Path("panoptes.whl"))


def test_statuses_and_secrets_do_not_make_a_new_revision() -> None:
    app = {
        "ApplicationInstanceId": "applicationInstance-1",
        "Status": "DEPLOYMENT_PENDING",
        "Desired": "RUNNING",
        "Cameras": {"cam": {"StreamUrl": "rtsp://x", "Username": "u", "Password": "p1"}},
    }
    state = {"DeviceId": A, "ApplicationInstances": [app], "Jobs": [], "Revision": 3}
    base = content_digest(state)
    moved = {**app, "Status": "DEPLOYMENT_SUCCEEDED"}
    assert content_digest({**state, "ApplicationInstances": [moved], "Revision": 4}) == base
    removed = {**app, "Desired": "REMOVED"}
    assert content_digest({**state, "ApplicationInstances": [removed]}) != base
    # The stored digest never carries a password, not even hashed with the rest.
    other_password = {**app, "Cameras": {"cam": {**app["Cameras"]["cam"], "Password": "p2"}}}
    assert content_digest({**state, "ApplicationInstances": [other_password]}) == base


def test_link_ports_and_urls_follow_the_api_port(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    from panoptes.cloud.server import ServerConfig

    plain = ServerConfig(tmp_path, port=9000).link
    assert (plain.device_port, plain.broker_port) == (9001, 9002)
    assert plain.broker_url == "mqtts://127.0.0.1:9002"
    assert plain.device_endpoint == "https://127.0.0.1:9001"
    # Listening everywhere: devices are told this machine's name, unless --public-host.
    assert ServerConfig(tmp_path, host="0.0.0.0").link.public_host == socket.getfqdn()
    public = ServerConfig(tmp_path, host="0.0.0.0", public_host="cams.example", port=80).link
    assert public.device_endpoint == "https://cams.example:81"
    external = ServerConfig(tmp_path, broker="mqtts://mq.example:8883").link
    assert external.broker_url == "mqtts://mq.example:8883"


def test_a_busy_port_is_one_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import socket

    from typer.testing import CliRunner

    from panoptes.cli.main import app

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(
            app, ["serve", "--data-dir", str(tmp_path / "d"), "--broker-port", str(port)]
        )
    assert result.exit_code == 1
    text = " ".join(result.output.split())
    assert "the device link cannot start" in text and "--broker-port" in text
