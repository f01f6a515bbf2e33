"""Logs and metrics on the instance page, through the seams the log and metric services fill.

The CloudWatch Logs and CloudWatch backends are other rooms' work; here a small
backend answering the same operations with the APIs' shapes (FilterLogEvents,
DescribeLogStreams, GetMetricStatistics) stands in, so what is checked is the
console's side: what it asks for and what it shows.
"""

from __future__ import annotations

import pytest
from api_helpers import provision, publish_sample_app
from deploy_helpers import deploy, sample_graph
from feeds_support import LogsAndMetrics

from panoptes.console.feeds import LOGS_SERVICE, METRICS_SERVICE


@pytest.fixture
def deployed(stack, console):
    device_id = provision(stack, "edge-1")
    publish_sample_app(stack)
    graph = sample_graph(stack.account)
    url = deploy(console, device_id, graph, **{"camera.camera_node": "MY_CAMERA"}).headers[
        "location"
    ]
    instance_id = url.rsplit("/", 1)[1]
    group = f"/aws/panorama/devices/{device_id}/applications/{instance_id}"
    feeds = LogsAndMetrics(group, [("console_output", "starting"), ("code_node", "frame 1"),
                                   ("code_node", "ERROR model timeout")])  # fmt: skip
    console_state = stack.server.console.console
    console_state.backends = {**console_state.backends, LOGS_SERVICE: feeds,
                              METRICS_SERVICE: feeds}  # fmt: skip
    return url, feeds


def test_without_log_and_metric_services_the_page_says_so(stack, console):
    device_id = provision(stack, "edge-1")
    publish_sample_app(stack)
    url = deploy(console, device_id, sample_graph(stack.account),
                  **{"camera.camera_node": "MY_CAMERA"}).headers["location"]  # fmt: skip
    html = console.http.get(url).text
    assert "once the log service is enabled" in html
    assert "once the metrics service is enabled" in html


def test_logs_are_read_by_stream_and_filter(console, deployed):
    url, feeds = deployed
    html = console.http.get(url).text
    assert "[console_output] starting" in html and "[code_node] frame 1" in html
    assert "<option>code_node</option>" in html
    filtered = console.http.get(url, params={"stream": "code_node", "filter": "ERROR"}).text
    assert "ERROR model timeout" in filtered and "starting" not in filtered.split("Log lines")[1]
    # Follow mode: from after the last line shown, only what came since.
    last = feeds.events[1]["timestamp"]
    follow = console.http.get(url + "/logs.json", params={"after": str(last + 1)}).json()
    assert [e["message"] for e in follow["events"]] == ["ERROR model timeout"]
    assert follow["token"] is None
    assert (
        console.http.get(url + "/logs.json", params={"after": str(last + 2)}).json()["events"] == []
    )
    asked = [p for op, p in feeds.calls if op == "FilterLogEvents"]
    assert asked[1]["logStreamNames"] == ["code_node"] and asked[1]["filterPattern"] == "ERROR"


def test_metrics_are_charted(console, deployed):
    url, feeds = deployed
    html = console.http.get(url).text
    for title in ("Frame rate", "Inference time", "Errors", "Device active"):
        assert f"<figcaption>{title}" in html
    assert 'aria-label="Frame rate: latest 10 fps, between 10 and 14 fps over 5 points"' in html
    asked = {p["MetricName"]: p for op, p in feeds.calls if op == "GetMetricStatistics"}
    assert asked["DeviceActive"]["Dimensions"][0]["Name"] == "DeviceId"
    assert asked["ApplicationErrors"]["Statistics"] == ["Sum"]
