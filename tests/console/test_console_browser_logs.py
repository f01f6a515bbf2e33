"""Logs (streams, filter, follow) and metric charts in the browser, on the services' seams.

The log and metric services are stood in for (feeds_support.py) until they are part
of this build; the page, its filter form and its follow mode are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from api_helpers import provision, publish_sample_app
from browser_support import Screens, artifacts_dir, chromium
from deploy_helpers import deploy, sample_graph
from feeds_support import LogsAndMetrics

from panoptes.console.feeds import LOGS_SERVICE, METRICS_SERVICE

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_logs_follow_and_charts(stack, console, admin_password, tmp_path: Path):
    from playwright.sync_api import expect

    device_id = provision(stack, "edge-1")
    publish_sample_app(stack)
    url = deploy(console, device_id, sample_graph(stack.account),
                 **{"camera.camera_node": "MY_CAMERA"}).headers["location"]  # fmt: skip
    instance_id = url.rsplit("/", 1)[1]
    feeds = LogsAndMetrics(
        f"/aws/panorama/devices/{device_id}/applications/{instance_id}",
        [("console_output", "starting"), ("code_node", "frame 1")],
    )
    state = stack.server.console.console
    state.backends = {**state.backends, LOGS_SERVICE: feeds, METRICS_SERVICE: feeds}
    with chromium() as browser:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(30_000)
        screens = Screens(page, artifacts_dir(tmp_path, "logs-and-metrics"))
        page.goto(stack.url + url)
        page.get_by_label("User name").fill("admin")
        page.get_by_label("Password").fill(admin_password)
        page.get_by_role("button", name="Sign in").click()
        lines = page.get_by_label("Log lines")
        expect(lines).to_contain_text("[console_output] starting")
        # One stream, filtered.
        page.get_by_label("Stream").select_option("code_node")
        page.get_by_label("Filter").fill("frame")
        page.get_by_role("button", name="Show").click()
        expect(lines).to_contain_text("[code_node] frame 1")
        expect(lines).not_to_contain_text("starting")
        # Follow: what the device ships next appears without a reload.
        page.get_by_label("Follow").check()
        feeds.add("code_node", "frame 2")
        feeds.add("console_output", "not in this stream")
        expect(lines).to_contain_text("[code_node] frame 2")
        expect(lines).not_to_contain_text("not in this stream")
        # The charts, described for screen readers.
        for title in ("Frame rate", "Inference time", "Errors", "Device active"):
            expect(page.get_by_role("img", name=title + ":")).to_be_visible()
        screens.shot("instance-logs-and-metrics")
