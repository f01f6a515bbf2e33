"""An alarm made with `panoptes alarms create` fires when an app keeps crashing, reaches a
webhook and an SMTP server, and resolves when the app is healthy again.

The server runs as `panoptes serve` builds it, with its upkeep thread evaluating alarms;
the crashes arrive as the MQTT bridge reports them (put_device_metric of
ApplicationErrors per health report: the errors seen, 0 when healthy).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import REGION, Stack, running_stack
from obs_support import SmtpSink, WebhookSink

from panoptes.cloud.services.metrics import APPLICATION_ERRORS, put_device_metric
from panoptes.cloud.services.notifications import Notifier, SmtpSettings
from panoptes.settings import ServiceRecord
from serve_support import clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = {"ApplicationInstanceName": "my-app", "ApplicationInstanceId": "applicationInstance-abc"}


@pytest.fixture
def stack(tmp_path: Path, smtp_sink: SmtpSink) -> Iterator[Stack]:
    data = tmp_path / "data"
    with running_stack("sqlite", data) as running:
        ServiceRecord(running.url, REGION).write(data)
        upkeep = running.server.upkeep
        assert upkeep is not None
        upkeep.notifier = Notifier(SmtpSettings.from_url(smtp_sink.url))
        upkeep.interval = 0.5
        upkeep.start()
        try:
            yield running
        finally:
            upkeep.stop()


def panoptes(stack: Stack, home: Path, *args: str) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "panoptes", *args, "--data-dir", str(stack.server.config.data_dir)],
        env=clean_env(home), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout


def report(stack: Stack, errors: int) -> None:
    put_device_metric(stack.server.backend.env, stack.account, APPLICATION_ERRORS, APP, errors)


def test_app_errors_alarm_fires_notifies_and_resolves(
    stack: Stack, webhook: WebhookSink, smtp_sink: SmtpSink, tmp_path: Path
) -> None:
    out = panoptes(
        stack, tmp_path, "alarms", "create", "app-failing", "--metric", APPLICATION_ERRORS,
        "--dimension", "ApplicationInstanceName=my-app",
        "--dimension", "ApplicationInstanceId=applicationInstance-abc",
        "--statistic", "Sum", "--period", "10", "--threshold", "1",
        "--webhook", webhook.url, "--email", "ops@example.com",
    )  # fmt: skip
    assert "alarm app-failing" in out

    for _ in range(3):  # the app crashes, is restarted, crashes again
        report(stack, 1)
    (fired,) = webhook.wait_for(1)
    assert (fired["AlarmName"], fired["NewStateValue"]) == ("app-failing", "ALARM")
    (mail,) = smtp_sink.wait_for(1)
    assert mail["Subject"] == 'ALARM: "app-failing" in us-east-1'
    assert "ALARM" in panoptes(stack, tmp_path, "alarms", "list").split()[0]

    # Healthy again: reports of no errors until the 10-second window holds only those.
    deadline = time.monotonic() + 120  # bounds a hang, not a performance claim
    while len(webhook.received) < 2 and time.monotonic() < deadline:
        report(stack, 0)
        time.sleep(0.5)
    resolved = webhook.wait_for(2)[1]
    assert (resolved["OldStateValue"], resolved["NewStateValue"]) == ("ALARM", "OK")
    assert smtp_sink.wait_for(2)[1]["Subject"] == 'OK: "app-failing" in us-east-1'

    history = panoptes(stack, tmp_path, "alarms", "history", "app-failing")
    assert "Alarm updated from ALARM to OK" in history
    assert "Successfully executed action mailto:ops@example.com" in history
    assert "secret-token" not in history  # the webhook's path is not shown
