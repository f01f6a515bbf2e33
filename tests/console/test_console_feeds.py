"""Logs and metrics on the instance page, read through the CloudWatch Logs and CloudWatch
backends the server registers (what the device link stores: feeds_support.py)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from api_helpers import Stack, provision, publish_sample_app
from console_client import ConsoleClient
from deploy_helpers import deploy, sample_graph
from feeds_support import DeviceFeeds

from panoptes.console.charts import PAD, WIDTH, svg_chart
from panoptes.console.feeds import CHARTS, LOGS_SERVICE, METRICS_SERVICE, Series


def _deploy(
    stack: Stack, console: ConsoleClient, device_id: str | None = None
) -> tuple[str, DeviceFeeds]:
    """The sample deployed through the wizard (on a new device unless DEVICE_ID)."""
    if device_id is None:
        device_id = provision(stack, "edge-1")
        publish_sample_app(stack)
    url = deploy(console, device_id, sample_graph(stack.account),
                 **{"camera.camera_node": "MY_CAMERA"}).headers["location"]  # fmt: skip
    return url, DeviceFeeds(stack, device_id, url.rsplit("/", 1)[1])


@pytest.fixture
def deployed(stack, console) -> tuple[str, DeviceFeeds]:  # type: ignore[no-untyped-def]
    url, feeds = _deploy(stack, console)
    feeds.ship("console_output", "starting")
    feeds.ship("code_node", "frame 1", "ERROR model timeout")
    return url, feeds


def test_without_log_and_metric_services_the_page_says_so(stack, console):
    state = stack.server.console.console
    state.backends = {
        k: v for k, v in state.backends.items() if k not in (LOGS_SERVICE, METRICS_SERVICE)
    }
    url, _ = _deploy(stack, console)
    html = console.http.get(url).text
    assert "once the log service is enabled" in html
    assert "once the metrics service is enabled" in html


def test_before_the_device_ships_anything_the_logs_say_so(stack, console):
    url, _ = _deploy(stack, console)
    html = console.http.get(url).text
    assert "No log line yet." in html and "no data yet" in html


def test_logs_are_read_by_stream_and_filter(console, deployed):
    url, feeds = deployed
    html = console.http.get(url).text
    assert "[console_output] starting" in html and "[code_node] frame 1" in html
    assert "<option>code_node</option>" in html and "<option>console_output</option>" in html
    filtered = console.http.get(url, params={"stream": "code_node", "filter": "ERROR"}).text
    lines = filtered.split('aria-label="Log lines"')[1].split("</pre>")[0]
    assert "ERROR model timeout" in lines
    assert "starting" not in lines and "frame 1" not in lines
    # Follow mode: from after the last line shown, only what came since.
    shown = console.http.get(url + "/logs.json").json()["events"]
    after = str(shown[-1]["ms"] + 1)
    assert console.http.get(url + "/logs.json", params={"after": after}).json()["events"] == []
    feeds.ship("code_node", "frame 2")
    follow = console.http.get(url + "/logs.json", params={"after": after}).json()
    assert [(e["stream"], e["message"]) for e in follow["events"]] == [("code_node", "frame 2")]


def test_logs_of_another_instance_are_not_shown(stack, console, deployed):
    url, feeds = deployed
    other, other_feeds = _deploy(stack, console, feeds.device_id)
    other_feeds.ship("code_node", "elsewhere")
    assert "elsewhere" not in console.http.get(url).text
    assert "elsewhere" in console.http.get(other).text


def test_the_spec_device_metrics_are_charted(console, deployed):
    url, feeds = deployed
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    for minutes in (3, 2, 1):
        feeds.heartbeat(now - timedelta(minutes=minutes))
        feeds.heartbeat(now - timedelta(minutes=minutes, seconds=10))
    # ApplicationErrors is viewed as a Sum: two reports in one minute add up.
    feeds.health(now - timedelta(minutes=3), {"code_node": "RUNNING"})
    feeds.health(now - timedelta(minutes=2), {"code_node": "ERROR", "model_node": "ERROR"})
    feeds.health(now - timedelta(minutes=2, seconds=10), {"code_node": "ERROR"})
    feeds.health(now - timedelta(minutes=1), {"code_node": "ERROR"})
    html = console.http.get(url).text
    assert "<figcaption>Application errors</figcaption>" in html
    assert "<figcaption>Device active</figcaption>" in html
    assert 'aria-label="Application errors: latest 1, between 0 and 3 over 3 points"' in html
    # DeviceActive as an Average: 1 while the device is up.
    assert 'aria-label="Device active: latest 1, between 1 and 1 over 3 points"' in html
    # No invented series: nothing the control plane does not record is charted.
    assert not re.search(r"Frame rate|Inference time", html)


def test_a_chart_spans_the_hour_and_marks_each_point():
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    chart = CHARTS[1]
    svg = svg_chart(
        Series(chart, [(now - timedelta(minutes=6), 1.0)], now - timedelta(hours=1), now)
    )
    assert 'aria-label="Device active: latest 1, between 1 and 1 over 1 point"' in svg
    # One datapoint is a dot, placed 54 minutes into the hour (9/10 of the plot's width).
    (cx,) = re.findall(r'<circle class="chart-dot" cx="([0-9.]+)"', svg)
    assert float(cx) == pytest.approx(PAD + 0.9 * (WIDTH - 2 * PAD), abs=0.1)
