"""What devices send over the link reaches the log store and the metrics; apps' iot-data
messages reach the broker."""

from __future__ import annotations

import queue
import time
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from api_helpers import panorama_session
from botocore.config import Config
from link_support import WAIT, LinkStack, connect_outcome, wait_until

from panoptes import link


def _client(ls: LinkStack, service: str):
    stack = ls.api
    return panorama_session().client(
        service,
        endpoint_url=stack.url,
        region_name="us-east-1",
        aws_access_key_id=stack.key_id,
        aws_secret_access_key=stack.secret,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_heartbeats_count_as_device_active_and_log_batches_are_readable(linked: LinkStack):
    device = linked.device("edge-observed")
    client = device.connect()
    device.online(client)
    cloudwatch = _client(linked, "cloudwatch")

    def active() -> list:
        now = datetime.now(UTC)
        points = cloudwatch.get_metric_statistics(
            Namespace="PanoramaDeviceMetrics",
            MetricName="DeviceActive",
            Dimensions=[
                {"Name": "DeviceId", "Value": device.id},
                {"Name": "DeviceName", "Value": "edge-observed"},
            ],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1),
            Period=60,
            Statistics=["Sum"],
        )["Datapoints"]
        return points

    assert wait_until(active, "DeviceActive from the heartbeat")

    group = link.device_log_group(device.id)
    batch = {
        "Group": group,
        "Stream": "ota_log",
        "Events": [{"timestamp": int(time.time() * 1000), "message": "hello from the device"}],
        "Sequence": 1,
        "Dropped": 0,
    }
    client.publish(link.topic(device.id, link.LOGS), link.encode(batch), qos=1).wait_for_publish(
        WAIT
    )
    logs = _client(linked, "logs")

    def lines() -> list[str]:
        try:
            out = logs.get_log_events(logGroupName=group, logStreamName="ota_log")
        except logs.exceptions.ResourceNotFoundException:
            return []
        return [e["message"] for e in out["events"]]

    assert wait_until(lambda: "hello from the device" in lines(), "the shipped log line")
    # A batch for another device's group is refused, not stored.
    foreign = dict(batch, Group=link.device_log_group("device-not-mine"), Sequence=2)
    client.publish(link.topic(device.id, link.LOGS), link.encode(foreign), qos=1).wait_for_publish(
        WAIT
    )
    groups = logs.describe_log_groups()["logGroups"]
    assert link.device_log_group("device-not-mine") not in {g["logGroupName"] for g in groups}
    device.close()


def test_iot_data_publish_reaches_the_broker(linked: LinkStack):
    creds = linked.api.server.link.credentials
    assert creds is not None
    got: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
    watcher = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id="panoptes-control-plane-test-watcher",
        protocol=mqtt.MQTTv311,
    )
    watcher.tls_set(
        ca_certs=str(linked.ca), certfile=str(creds.bridge.cert), keyfile=str(creds.bridge.key)
    )
    watcher.on_message = lambda _c, _u, m: got.put(m)
    assert connect_outcome(watcher, linked.broker_port) == "Success"
    watcher.subscribe("panoptes/v1/accounts/+/apps/#", qos=1)
    time.sleep(0.5)  # the SUBACK before the publish
    try:
        _client(linked, "iot-data").publish(topic="lobby/count", qos=1, payload=b'{"people": 3}')
        message = got.get(timeout=WAIT)
        assert message.topic == f"panoptes/v1/accounts/{linked.api.account}/apps/lobby/count"
        assert message.payload == b'{"people": 3}'
    finally:
        watcher.loop_stop()
        watcher.disconnect()
