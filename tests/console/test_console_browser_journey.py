"""The console journey in a real browser (Debian's chromium driven by Playwright).

Sign in, set up a device (the archive downloaded), add a camera (the test RTSP
server), see the packages, deploy the sample application through the wizard, see it
reach RUNNING with live video whose frames change, pause the camera, read its logs,
remove it; then what is refused (wrong password, CSRF token missing, expired
session), keyboard use and a phone-sized screen. Screenshots of every page land in
$PANOPTES_ARTIFACTS/console/journey.

The device side: until the device agent is part of this build, the appliance is
played through DeviceView (the control plane's seam the agent reports through: the
certificate exchange, deployment status, health) and its output node by
`AnnotatedOutput` (the runtime's MjpegServer fed with the RTSP camera's frames).
`DEVICE_SIDE` below is where the real agent takes over.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from api_helpers import bring_online, publish_package
from browser_support import AnnotatedOutput, Screens, artifacts_dir, chromium
from deploy_helpers import sample_graph

from panoptes.console.feeds import LOGS_SERVICE, LiveVideoByFunction
from sample_app import sample_packages

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

TIMEOUT_MS = 30_000


class ReportingDevice:
    """The appliance as the control plane sees it, reported through DeviceView."""

    def __init__(self, stack, camera_url: str) -> None:  # type: ignore[no-untyped-def]
        self.stack, self.camera_url = stack, camera_url
        self.outputs: dict[str, AnnotatedOutput] = {}

    def provision(self, device_id: str, archive: bytes) -> None:
        bring_online(self.stack, device_id, archive)

    def run(self, device_id: str, instance_id: str, nodes: list[str]) -> None:
        view, now = self.stack.view, datetime.now(UTC)
        view.mark_published(instance_id, now)
        view.report_instance_status(device_id, instance_id, "DEPLOYMENT_IN_PROGRESS", now)
        self.outputs[instance_id] = AnnotatedOutput(self.camera_url)
        view.report_instance_status(device_id, instance_id, "DEPLOYMENT_SUCCEEDED", now)
        view.report_health(device_id, instance_id, "RUNNING", now, {n: "RUNNING" for n in nodes})

    def live_url(self, instance_id: str) -> str | None:
        output = self.outputs.get(instance_id)
        return output.url if output else None

    def close(self) -> None:
        for output in self.outputs.values():
            output.close()


DEVICE_SIDE = ReportingDevice


def test_the_console_journey(stack, admin_password, rtsp_server, tmp_path: Path):
    device = DEVICE_SIDE(stack, rtsp_server.url)
    stack.server.console.live = LiveVideoByFunction(lambda ctx, iid: device.live_url(iid))
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        page.on("dialog", lambda dialog: dialog.accept())  # the Remove confirmation
        screens = Screens(page, artifacts_dir(tmp_path, "journey"))
        try:
            _journey(stack, page, screens, admin_password, device)
            _refusals(stack, page, screens, admin_password)
            _phone(stack, browser, screens, admin_password)
        finally:
            context.close()
            device.close()


def _sign_in(page, password: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def _journey(stack, page, screens, password, device) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    # Sign in: the root sends a browser to the sign-in page; a wrong password is refused.
    page.goto(stack.url + "/")
    expect(page.get_by_role("heading", name="Sign in to Panoptes")).to_be_visible()
    screens.shot("signin")
    page.get_by_label("User name").fill("admin")
    page.get_by_label("Password").fill(password + "-wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("Wrong user name or password.")
    screens.shot("signin-refused")
    _sign_in(page, password)
    expect(page.get_by_role("heading", name="Applications")).to_be_visible()
    screens.shot("applications-empty")

    # Set up a device: the wizard ends with the archive's download and its validity.
    page.get_by_role("link", name="Devices").click()
    page.get_by_role("link", name="Set up a device").click()
    page.get_by_label("Name", exact=True).fill("lobby-appliance")
    page.get_by_label("Description").fill("in the lobby")
    page.get_by_label("Tags").fill("site=lobby")
    page.get_by_text("Advanced network settings").click()
    page.get_by_label("NTP servers").fill("0.pool.ntp.org")
    screens.shot("device-wizard")
    page.get_by_role("button", name="Create the device").click()
    expect(page.get_by_role("heading", name="Device lobby-appliance created")).to_be_visible()
    expect(page.locator("[data-countdown]")).to_contain_text("min")
    screens.shot("device-archive")
    with page.expect_download() as download:
        page.get_by_role("link", name="Download certificates-omni_lobby-appliance.zip").click()
    archive = Path(download.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(archive)) as zf:
        info = json.loads(zf.read("provisioning.json"))
        assert json.loads(zf.read("network.json"))["Ntp"] == {"NtpServers": ["0.pool.ntp.org"]}
    device_id = info["DeviceId"]
    device.provision(device_id, archive)
    page.get_by_role("link", name="Devices").click()
    row = page.get_by_role("row", name="lobby-appliance")
    expect(row).to_contain_text("ONLINE")
    screens.shot("devices")

    # A camera: the test RTSP server, with a thumbnail from its stream.
    page.get_by_role("link", name="Data sources").click()
    page.get_by_role("link", name="Add a camera", exact=True).click()
    page.get_by_label("Name", exact=True).fill("lobby")
    page.get_by_label("Description").fill("lobby camera")
    page.get_by_label("RTSP URL").fill(rtsp_url := device.camera_url)
    page.get_by_label("User name").fill("viewer")
    page.get_by_label("Password").fill("camera-secret-1")
    page.get_by_role("button", name="Add the camera").click()
    expect(page.get_by_role("status")).to_have_text("Camera lobby added.")
    thumb = page.get_by_role("img", name="Snapshot of camera lobby")
    expect(thumb).to_be_visible()
    page.wait_for_function(
        "img => img.complete && img.naturalWidth === 320", arg=thumb.element_handle()
    )
    assert "camera-secret-1" not in page.content() and rtsp_url in page.content()
    screens.shot("data-sources")

    # Packages: the sample app's, as `panoptes app package-application` publishes them.
    code, model, files = sample_packages()
    publish_package(stack, code)
    publish_package(stack, model, files)
    page.get_by_role("link", name="Packages").click()
    expect(page.get_by_role("heading", name="SAMPLE_CODE")).to_be_visible()
    expect(page.get_by_role("heading", name="SQUEEZENET_PYTORCH")).to_be_visible()
    screens.shot("packages")

    # The deploy wizard: graph.json checked as typed, then uploaded; cameras, values.
    page.get_by_role("link", name="Deploy", exact=True).click()
    graph = sample_graph(stack.account).encode()
    page.get_by_label("graph.json", exact=True).fill(
        graph.decode().replace("code_node.video_in", "code_node.vidoe_in")
    )
    problems = page.locator("#problems")
    expect(problems).to_contain_text("nodeGraph.edges[0].consumer")
    expect(problems).to_contain_text("did you mean 'video_in'?")
    # Each problem's path leads to its place in the text.
    page.get_by_role("button", name="Go to nodeGraph.edges[0].consumer in graph.json").click()
    text_box = page.get_by_label("graph.json", exact=True)
    expect(text_box).to_be_focused()
    caret = text_box.evaluate("t => t.value.slice(t.selectionStart, t.selectionStart + 20)")
    assert caret == '"code_node.vidoe_in"'
    screens.shot("deploy-graph-errors")
    page.get_by_label("Upload graph.json").set_input_files(
        {"name": "graph.json", "mimeType": "application/json", "buffer": graph}
    )
    expect(problems).to_contain_text("graph.json is valid")
    page.get_by_label("Name", exact=True).fill("sample-app")
    page.get_by_label("Device").select_option(label="lobby-appliance (ONLINE)")
    screens.shot("deploy-step1")
    page.get_by_role("button", name="Next: cameras and parameters").click()
    expect(page.get_by_role("group", name="IP camera (required)")).to_be_visible()
    page.get_by_role("checkbox", name="lobby — lobby camera").check()
    page.get_by_label("Threshold").fill("35")
    screens.shot("deploy-step2")
    page.get_by_role("button", name="Deploy", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Deployment started.")
    expect(page.locator("#app-status")).to_have_text("DEPLOYMENT_PENDING")
    for node in ("lobby", "code_node", "model_node"):
        expect(page.get_by_role("row", name=node)).to_be_visible()
    screens.shot("instance-pending")
    instance_id = page.url.rsplit("/", 1)[1]

    # RUNNING, and the live video's frames change.
    device.run(device_id, instance_id, ["lobby", "code_node", "model_node", "output_node"])
    expect(page.locator("#app-status")).to_have_text("DEPLOYMENT_SUCCEEDED")
    expect(page.locator("#app-health")).to_have_text("RUNNING")
    live = page.get_by_role("img", name="Live annotated output of sample-app")
    expect(live).to_be_visible()
    page.wait_for_function("img => img.naturalWidth > 0", arg=live.element_handle())
    first = live.screenshot()
    deadline = time.monotonic() + 30  # bounds a hang; frames come at 15 fps
    while live.screenshot() == first:
        assert time.monotonic() < deadline, "the live video did not change"
        page.wait_for_timeout(200)
    screens.shot("instance-running")

    # Pause the camera.
    page.get_by_role("button", name="Pause lobby").click()
    expect(page.get_by_role("status")).to_have_text("Pause sent to camera lobby.")
    signals = stack.view.desired_state(device_id)["ApplicationInstances"][0]["NodeSignals"]
    assert signals["lobby"] == "PAUSED"
    screens.shot("instance-paused")

    # Logs: read, filtered and followed when the log service is in this build.
    logs = page.get_by_role("region", name="Logs")
    if LOGS_SERVICE in stack.server.console.console.backends:
        expect(logs.get_by_label("Log lines")).not_to_be_empty()
        logs.get_by_label("Follow").check()
    else:
        expect(logs).to_contain_text("once the log service is enabled")
    screens.shot("instance-logs")

    # Remove it.
    page.get_by_role("button", name="Remove", exact=True).click()
    expect(page.get_by_role("status")).to_have_text("Removal requested.")
    expect(page.locator("#app-status")).to_have_text("REMOVAL_PENDING")
    screens.shot("instance-removed")
    described = stack.client().describe_application_instance(ApplicationInstanceId=instance_id)
    assert described["Status"] == "REMOVAL_PENDING"


def _refusals(stack, page, screens, password) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    # A form without its CSRF token is refused and changes nothing.
    page.goto(stack.url + "/console/devices/new")
    page.get_by_label("Name", exact=True).fill("forged")
    page.evaluate("document.querySelector('main form input[name=csrf_token]').remove()")
    page.get_by_role("button", name="Create the device").click()
    expect(page.get_by_role("alert")).to_contain_text("security token is missing or wrong")
    screens.shot("csrf-refused")
    names = [d["Name"] for d in stack.client().list_devices()["Devices"]]
    assert names == ["lobby-appliance"]

    # An expired session sends the browser back to sign in.
    users = stack.server.console.users
    real_now = users.now
    users.now = lambda: real_now() + users.absolute + timedelta(seconds=1)
    try:
        page.goto(stack.url + "/console/devices")
        expect(page.get_by_role("heading", name="Sign in to Panoptes")).to_be_visible()
        screens.shot("session-expired")
    finally:
        users.now = real_now
    _sign_in(page, password)
    expect(page.get_by_role("heading", name="Devices")).to_be_visible()

    # The keyboard: the first Tab reaches "Skip to content", which moves to the page.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"


def _phone(stack, browser, screens, password) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        page = phone.new_page()
        page.goto(stack.url + "/console/signin")
        _sign_in(page, password)
        expect(page.get_by_role("heading", name="Applications")).to_be_visible()
        for path in ("/console/devices", "/console/cameras", "/console/deploy",
                     "/console/instances?removed=1"):  # fmt: skip
            page.goto(stack.url + path)
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390, f"{path} is wider than a phone screen ({width} px)"
            phone_screens = Screens(page, screens.folder)
            phone_screens.count = screens.count
            screens.count += 1
            phone_screens.shot("phone-" + path.strip("/").replace("/", "-").split("?")[0])
    finally:
        phone.close()
