"""Logs (streams, filter, follow) and metric charts in the browser, read through the log
store and metrics the device link writes (feeds_support.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_helpers import provision, publish_sample_app
from browser_support import Screens, artifacts_dir, chromium
from deploy_helpers import deploy, sample_graph
from feeds_support import DeviceFeeds

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_logs_follow_and_charts(stack, console, admin_password, tmp_path: Path):
    from playwright.sync_api import expect

    device_id = provision(stack, "edge-1")
    publish_sample_app(stack)
    url = deploy(console, device_id, sample_graph(stack.account),
                 **{"camera.camera_node": "MY_CAMERA"}).headers["location"]  # fmt: skip
    feeds = DeviceFeeds(stack, device_id, url.rsplit("/", 1)[1])
    feeds.ship("console_output", "starting")
    feeds.ship("code_node", "frame 1")
    now = datetime.now(UTC)
    for minutes in (2, 1):
        feeds.heartbeat(now - timedelta(minutes=minutes))
        feeds.health(now - timedelta(minutes=minutes), {"code_node": "RUNNING"})
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
        feeds.ship("code_node", "frame 2")
        feeds.ship("console_output", "not in this stream")
        expect(lines).to_contain_text("[code_node] frame 2")
        expect(lines).not_to_contain_text("not in this stream")
        # The charts, described for screen readers.
        expect(page.get_by_role("img", name="Application errors: latest 0")).to_be_visible()
        expect(page.get_by_role("img", name="Device active: latest 1")).to_be_visible()
        screens.shot("instance-logs-and-metrics")
