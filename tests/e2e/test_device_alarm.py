"""Issue 8's alarm, end to end: an application that keeps crashing on a real device makes
the ApplicationErrors alarm fire (webhook and e-mail); once it runs healthy, the alarm
resolves and says so again.

`panoptes serve --smtp ...` (alarms evaluated every 10 s), `panoptes agent`, the test
camera and the demo application, edited to crash on its 10th frame the first three
times it starts (a count it keeps in /opt/aws/panorama/storage, which survives its
restarts). Nothing is simulated: the errors are the agent's health reports.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]
for _folder in (TESTS / "cloud", TESTS / "cloud" / "observability"):
    if str(_folder) not in sys.path:
        sys.path.insert(0, str(_folder))

from device_journey import ControlPlane, Device, demo_params, publish_demo, wait_for  # noqa: E402
from obs_support import SmtpSink, WebhookSink  # noqa: E402

from panoptes.media import testcamera  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CRASHES = 3


def crash_three_times(text: str) -> str:
    """The demo's code, crashing on the 10th frame of each of its first starts."""
    text = text.replace("import logging\n", "import logging\nimport os\n", 1)
    text = text.replace(
        "        self.frames = 0\n",
        "        self.frames = 0\n"
        "        count = '/opt/aws/panorama/storage/starts'\n"
        "        self.starts = int(open(count).read()) + 1 if os.path.exists(count) else 1\n"
        "        open(count, 'w').write(str(self.starts))\n",
        1,
    )
    text = text.replace(
        "            self.frames += 1\n",
        "            self.frames += 1\n"
        f"            if self.starts <= {CRASHES} and self.frames == 10:\n"
        "                raise RuntimeError(f'crash {self.starts} of the alarm test')\n",
        1,
    )
    assert text.count("alarm test") == 1 and "self.starts" in text
    return text


@pytest.fixture
def sinks() -> Iterator[tuple[WebhookSink, SmtpSink]]:
    webhook, smtp = WebhookSink(), SmtpSink()
    try:
        yield webhook, smtp
    finally:
        webhook.close()
        smtp.close()


def test_a_crashing_app_fires_the_errors_alarm_which_resolves_when_healthy(
    tmp_path: Path, rtsp_available: None, sinks: tuple[WebhookSink, SmtpSink]
) -> None:
    webhook, smtp = sinks
    camera = testcamera.CameraServer(
        log=tmp_path / "camera.log", username="demo", password="demo"
    ).start()
    cp = ControlPlane(tmp_path, args=("--smtp", smtp.url)).start()
    device = Device(cp, tmp_path, "alarm-edge").start()
    try:
        api, cloudwatch = cp.client("panorama"), cp.client("cloudwatch")
        wait_for(
            lambda: api.describe_device(DeviceId=device.id)["DeviceConnectionStatus"] == "ONLINE",
            60,
            f"the device ONLINE\n{device.tail()}",
        )
        account = device.provisioning()["AccountId"]
        project = publish_demo(cp, tmp_path / "app", account, camera.url, edit=crash_three_times)
        params = demo_params(project, account, device.id, Name="crashy")
        instance = api.create_application_instance(**params)["ApplicationInstanceId"]
        cloudwatch.put_metric_alarm(
            AlarmName="crashy-errors",
            Namespace="PanoramaDeviceMetrics",
            MetricName="ApplicationErrors",
            Dimensions=[
                {"Name": "ApplicationInstanceName", "Value": "crashy"},
                {"Name": "ApplicationInstanceId", "Value": instance},
            ],
            Statistic="Sum",
            Period=30,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            AlarmActions=[webhook.url, "mailto:ops@example.com"],
            OKActions=[webhook.url, "mailto:ops@example.com"],
        )

        def alarm_state() -> str:
            (alarm,) = cloudwatch.describe_alarms(AlarmNames=["crashy-errors"])["MetricAlarms"]
            return alarm["StateValue"]

        wait_for(lambda: alarm_state() == "ALARM", 180, f"the alarm to fire\n{device.tail()}")

        def notices(state: str) -> list[dict]:
            return [m for m in webhook.received if m.get("NewStateValue") == state]

        wait_for(lambda: notices("ALARM"), 60, "the webhook to hear of the alarm")
        assert notices("ALARM")[0]["AlarmName"] == "crashy-errors"
        wait_for(
            lambda: any(
                "crashy-errors" in m["Subject"] and "ALARM" in m["Subject"] for m in smtp.messages
            ),
            60,
            "the alarm e-mail",
        )
        # The app stops crashing after its third start: the alarm resolves, and says so.
        alarmed = len(webhook.received)
        wait_for(lambda: alarm_state() == "OK", 240, f"the alarm to resolve\n{device.tail()}")
        wait_for(
            lambda: [m for m in webhook.received[alarmed:] if m.get("NewStateValue") == "OK"],
            60,
            "the webhook to hear the alarm resolved",
        )
        nodes = api.list_application_instance_node_instances(ApplicationInstanceId=instance)
        assert {n["NodeInstanceId"]: n["CurrentStatus"] for n in nodes["NodeInstances"]}[
            "code_node"
        ] == "RUNNING"
        history = cloudwatch.describe_alarm_history(AlarmName="crashy-errors")["AlarmHistoryItems"]
        assert any("ALARM" in item["HistorySummary"] for item in history)
    finally:
        device.stop()
        cp.stop()
        camera.kill()
