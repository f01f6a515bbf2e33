"""iot-data Publish from a role session reaches the MQTT broker (Mosquitto on :1883)
under the device's topic namespace; iot:Publish on a topic pattern is enforced."""

from __future__ import annotations

import queue
import uuid
from collections.abc import Iterator
from typing import Any

import botocore.exceptions
import paho.mqtt.client as mqtt
import pytest
from api_helpers import Stack, panorama_session, publish_sample_app, running_stack, serve_in_thread
from roles_support import (
    create_role,
    credentials_for,
    deploy,
    new_device,
    session_client,
    statement,
)

from panoptes.cloud.app import NO_LIMITS, create_app
from panoptes.cloud.services import DbCredentialStore
from panoptes.cloud.services.iotdata import IotDataBackend
from serve_support import free_port

BROKER = ("127.0.0.1", 1883)


def _connected(client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    try:
        client.connect(*BROKER, keepalive=30)
    except OSError:
        pytest.skip("no MQTT broker on 127.0.0.1:1883")
    client.loop_start()
    return client


@pytest.fixture(scope="module")
def broker_publish() -> Iterator[Any]:
    """What the channel gives the iot-data backend: publish(topic, payload, qos)."""
    client = _connected(f"panoptes-test-pub-{uuid.uuid4().hex[:8]}")

    def publish(topic: str, payload: bytes, qos: int) -> None:
        client.publish(topic, payload, qos=qos).wait_for_publish(timeout=10)

    yield publish
    client.loop_stop()
    client.disconnect()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, broker_publish) -> Iterator[dict]:
    """The stack, plus a front that also serves iot-data (as serve will once wired)."""
    with running_stack("sqlite", tmp_path_factory.mktemp("iot")) as stack:
        publish_sample_app(stack)
        db, env = stack.server.backend.db, stack.server.backend.env
        app = create_app(
            {
                "panorama": stack.server.backend,
                "iot-data": IotDataBackend.over(db, broker_publish),
            },
            DbCredentialStore(db, env.secrets),
            env.store,
            limits=NO_LIMITS,
        )
        with serve_in_thread(app, free_port()) as url:
            yield {"stack": stack, "url": url}


class Subscriber:
    """A paho client on the shared broker, subscribed to the topics a test names."""

    def __init__(self) -> None:
        self.received: queue.Queue = queue.Queue()
        self._acks: queue.Queue = queue.Queue()
        self.client = _connected(f"sub-{uuid.uuid4().hex[:8]}")
        self.client.on_message = lambda c, u, m: self.received.put((m.topic, m.payload, m.qos))
        self.client.on_subscribe = lambda *a: self._acks.put(True)

    def watch(self, *topics: str) -> None:
        for topic in topics:
            self.client.subscribe(topic, qos=1)
            self._acks.get(timeout=10)


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    sub = Subscriber()
    yield sub
    sub.client.loop_stop()
    sub.client.disconnect()


def iot_client(served: dict, creds: dict) -> Any:
    stack: Stack = served["stack"]
    return session_client(Stack(stack.kind, served["url"], stack.server, "", ""), "iot-data", creds)


def test_an_app_publishes_under_its_device_namespace(served: dict, subscriber) -> None:
    stack = served["stack"]
    create_role(
        stack,
        "publisher",
        statement("iot:Publish", f"arn:aws:iot:*:{stack.account}:topic/people/*"),
    )
    device = new_device(stack, "iot-appliance")
    instance = deploy(stack, device, "publisher")
    iot = iot_client(served, credentials_for(stack, device, instance))
    other = f"device-{uuid.uuid4().hex}"
    # This device's app space, and a link topic of another device it must not reach.
    subscriber.watch(f"panoptes/v1/devices/{device}/#", f"panoptes/v1/devices/{other}/#")

    iot.publish(topic="people/lobby", qos=1, payload=b'{"count": 3}')
    topic, payload, qos = subscriber.received.get(timeout=10)
    assert topic == f"panoptes/v1/devices/{device}/apps/people/lobby"
    assert payload == b'{"count": 3}' and qos == 1

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        iot.publish(topic=f"panoptes/v1/devices/{other}/desired", payload=b"{}")
    error = caught.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert "iot:Publish on resource: arn:aws:iot:us-east-1:" in error["Message"]
    assert f":topic/panoptes/v1/devices/{other}/desired" in error["Message"]

    with pytest.raises(botocore.exceptions.ClientError) as caught:
        iot.publish(topic="people/#", payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "InvalidRequestException"
    # A last allowed message: if a refused one had gone out, it would arrive first.
    iot.publish(topic="people/done", qos=1, payload=b"end")
    assert subscriber.received.get(timeout=10)[1] == b"end"


def test_a_role_without_iot_publish_is_refused(served: dict, subscriber) -> None:
    stack = served["stack"]
    create_role(stack, "metrics-only", statement("cloudwatch:PutMetricData"))
    device = new_device(stack, "quiet-appliance")
    instance = deploy(stack, device, "metrics-only")
    account_space = f"panoptes/v1/accounts/{stack.account}/apps"
    subscriber.watch(f"panoptes/v1/devices/{device}/#", f"{account_space}/#")
    iot = iot_client(served, credentials_for(stack, device, instance))
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        iot.publish(topic="people/lobby", qos=1, payload=b"{}")
    assert caught.value.response["Error"]["Code"] == "AccessDeniedException"
    # A long-lived key publishes in the account's space; had the refused message gone
    # out, it would have arrived before this one.
    admin = panorama_session().client(
        "iot-data",
        endpoint_url=served["url"],
        region_name="us-east-1",
        aws_access_key_id=stack.key_id,
        aws_secret_access_key=stack.secret,
    )
    admin.publish(topic="ops/marker", qos=1, payload=b"end")
    assert subscriber.received.get(timeout=10) == (f"{account_space}/ops/marker", b"end", 1)
