"""The deploy wizard and the application instance page, through HTTP as a browser sends it."""

from __future__ import annotations

import itertools
import json
import threading

import cv2
import httpx
import numpy as np
import pytest
from api_helpers import provision, publish_sample_app
from console_client import ConsoleClient, csrf_of, second_account_user
from deploy_helpers import deploy, sample_graph, step1

from panoptes.console.feeds import LiveVideoByFunction
from panoptes.media.mjpeg import BOUNDARY, MjpegServer


@pytest.fixture
def sample(stack):
    """A device online and the developer guide's sample app published (camera MY_CAMERA)."""
    device_id = provision(stack, "edge-1")
    publish_sample_app(stack)
    return device_id, sample_graph(stack.account)


def _validate(console: ConsoleClient, graph: str) -> dict:
    token = csrf_of(console.http.get("/console/deploy").text)
    response = console.http.post(
        "/console/deploy/validate", data={"graph": graph}, headers={"X-CSRF-Token": token}
    )
    assert response.status_code == 200
    return response.json()


def test_the_graph_is_checked_as_typed_with_json_paths(sample, console):
    _, graph = sample
    result = _validate(console, graph)
    assert result["ok"] and result["cameras"] == ["camera_node"]
    assert "detection_threshold" in result["parameters"]
    broken = graph.replace('"consumer": "code_node.video_in"', '"consumer": "code_node.vidoe_in"')
    result = _validate(console, broken)
    assert not result["ok"]
    problem = next(p for p in result["problems"] if p["severity"] == "error")
    assert problem["path"] == "nodeGraph.edges[0].consumer"
    assert "vidoe_in" in problem["message"] and "video_in" in problem["hint"]
    syntax = _validate(console, graph[:-10])
    assert syntax["problems"][0]["path"] == "$" and "line" in syntax["problems"][0]["message"]


def test_an_unregistered_package_is_named(stack, console):
    provision(stack, "edge-1")
    result = _validate(console, sample_graph(stack.account))
    assert not result["ok"]
    assert any("SAMPLE_CODE" in p["message"] for p in result["problems"])


def test_step_two_asks_for_cameras_and_parameters_with_their_titles(sample, console):
    device_id, graph = sample
    page = console.submit("/console/deploy", "/console/deploy/configure", step1(device_id, graph))
    assert page.status_code == 200
    html = page.text
    assert "IP camera" in html and "Choose a camera stream." in html  # the camera's decorator
    assert "Threshold" in html and "The minimum confidence percentage" in html
    assert 'value="MY_CAMERA"' in html and 'name="param.detection_threshold"' in html
    # A broken graph stays on step 1 with its problems.
    broken = console.submit(
        "/console/deploy", "/console/deploy/configure", step1(device_id, graph[:-10])
    )
    assert broken.status_code == 400 and "is not valid JSON" in broken.text


def test_deploy_pause_and_remove(stack, sample, console):
    device_id, graph = sample
    response = deploy(
        console, device_id, graph,
        **{"camera.camera_node": "MY_CAMERA", "launch.camera_node.MY_CAMERA": "onAppStart",
           "param.detection_threshold": "35", "param.log_level": "DEBUG"},
    )  # fmt: skip
    assert response.status_code == 303, response.text
    page_url = response.headers["location"]
    instance_id = page_url.rsplit("/", 1)[1]
    details = stack.client().describe_application_instance_details(
        ApplicationInstanceId=instance_id
    )
    overrides = json.loads(details["ManifestOverridesPayload"]["PayloadData"])
    values = {n["name"]: n.get("value") for n in overrides["nodeGraphOverrides"]["nodes"]}
    assert values["detection_threshold_override"] == 35.0
    assert values["log_level_override"] == "DEBUG"
    assert "region_override" not in values  # unchanged values are not overridden
    html = console.http.get(page_url).text
    assert "DEPLOYMENT_PENDING" in html and "Deployment started." in html
    for node in ("MY_CAMERA", "code_node", "model_node"):
        assert f'data-node-status="{node}"' in html
    status = console.http.get(page_url + "/status.json").json()
    assert status["Status"] == "DEPLOYMENT_PENDING" and "MY_CAMERA" in status["Nodes"]

    response = console.submit(
        page_url, page_url + "/signal", {"node": "MY_CAMERA", "signal": "PAUSE"}
    )
    assert response.status_code == 303
    desired = stack.view.desired_state(device_id)["ApplicationInstances"][0]
    assert desired["NodeSignals"]["MY_CAMERA"] == "PAUSED"
    console.submit(page_url, page_url + "/signal", {"node": "MY_CAMERA", "signal": "RESUME"})
    desired = stack.view.desired_state(device_id)["ApplicationInstances"][0]
    assert desired["NodeSignals"]["MY_CAMERA"] == "RUNNING"
    refused = console.submit(
        page_url, page_url + "/signal", {"node": "code_node", "signal": "PAUSE"}
    )
    assert refused.status_code == 400 and "is not a camera stream node" in refused.text

    assert console.submit(page_url, page_url + "/remove").status_code == 303
    described = stack.client().describe_application_instance(ApplicationInstanceId=instance_id)
    assert described["Status"] == "REMOVAL_PENDING"


def test_a_mandatory_camera_must_be_chosen(sample, console, stack):
    device_id, graph = sample
    response = deploy(console, device_id, graph)
    assert response.status_code == 400 and "choose at least one camera" in response.text
    answers = {"camera.camera_node": "MY_CAMERA", "param.detection_threshold": "high"}
    bad = deploy(console, device_id, graph, **answers)
    assert bad.status_code == 400 and "is not a float32" in bad.text
    assert stack.client().list_application_instances()["ApplicationInstances"] == []


def test_replace_and_clone_start_from_the_instance(stack, sample, console):
    device_id, graph = sample
    answers = {"camera.camera_node": "MY_CAMERA", "param.detection_threshold": "35"}
    first = deploy(console, device_id, graph, **answers)
    instance_id = first.headers["location"].rsplit("/", 1)[1]
    replace = console.http.get(f"/console/deploy?replace={instance_id}").text
    assert f'name="replace" value="{instance_id}"' in replace and "SAMPLE_CODE" in replace
    clone = console.http.get(f"/console/deploy?clone={instance_id}").text
    assert 'value="sample-app-copy"' in clone and 'name="replace" value=""' in clone
    # Step 2 of the replacement has the camera and the value the instance ran with.
    fields = {"replace": instance_id, "overrides": _overrides_of(stack, instance_id)}
    step2 = console.submit("/console/deploy", "/console/deploy/configure",
                           step1(device_id, graph, **fields)).text  # fmt: skip
    assert 'value="MY_CAMERA" checked' in step2 and 'value="35.0"' in step2
    second = deploy(console, device_id, graph, replace=instance_id,
                     **{"camera.camera_node": "MY_CAMERA"})  # fmt: skip
    new_id = second.headers["location"].rsplit("/", 1)[1]
    described = stack.client().describe_application_instance(ApplicationInstanceId=new_id)
    assert described["ApplicationInstanceIdToReplace"] == instance_id


def _overrides_of(stack, instance_id: str) -> str:
    details = stack.client().describe_application_instance_details(
        ApplicationInstanceId=instance_id
    )
    return details["ManifestOverridesPayload"]["PayloadData"]


def _read_parts(response: httpx.Response, count: int) -> list[bytes]:
    """COUNT JPEG parts of a multipart MJPEG answer (bounded by the client's timeout)."""
    buf, parts = b"", []
    for chunk in response.iter_bytes():
        buf += chunk
        while True:
            start = buf.find(b"\xff\xd8")
            end = buf.find(b"\xff\xd9", start + 2)
            if start < 0 or end < 0:
                break
            parts.append(buf[start : end + 2])
            buf = buf[end + 2 :]
            if len(parts) == count:
                return parts
    return parts


def test_live_output_is_relayed_from_the_device(stack, sample, console):
    device_id, graph = sample
    page_url = deploy(console, device_id, graph, **{"camera.camera_node": "MY_CAMERA"}).headers[
        "location"
    ]
    instance_id = page_url.rsplit("/", 1)[1]
    assert console.http.get(page_url + "/live.mjpg").status_code == 404  # nothing reported yet
    output = MjpegServer()
    stop = threading.Event()

    def frames() -> None:  # the runtime's output sink: a moving square
        i = 0
        while not stop.is_set():
            canvas = np.zeros((120, 160, 3), np.uint8)
            cv2.rectangle(canvas, (i % 140, 40), (i % 140 + 20, 60), (0, 255, 0), -1)
            output.publish(canvas)
            i += 7
            stop.wait(0.05)

    feeder = threading.Thread(target=frames, daemon=True)
    feeder.start()
    stack.server.console.live = LiveVideoByFunction(
        lambda ctx, iid: output.url + "stream.mjpg" if iid == instance_id else None
    )
    try:
        assert 'id="live-video"' in console.http.get(page_url).text
        with console.http.stream("GET", page_url + "/live.mjpg", timeout=20) as response:
            assert response.status_code == 200
            assert response.headers["content-type"] == (
                f"multipart/x-mixed-replace; boundary={BOUNDARY.decode()}"
            )
            parts = _read_parts(response, 3)
        assert len(parts) == 3
        images = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in parts]
        assert images[0].shape == (120, 160, 3)
        assert any(np.abs(a.astype(int) - b).mean() > 1 for a, b in itertools.pairwise(images))
        # Another account's user gets nothing of it.
        other = second_account_user(stack)
        assert other.http.get(page_url + "/live.mjpg").status_code == 404
    finally:
        stop.set()
        feeder.join(5)
        output.close()


def test_the_relay_carries_only_video(stack, sample, console):
    device_id, graph = sample
    page_url = deploy(console, device_id, graph, **{"camera.camera_node": "MY_CAMERA"}).headers[
        "location"
    ]
    # A URL that answers something else than MJPEG (here: the control plane's /healthz).
    stack.server.console.live = LiveVideoByFunction(lambda ctx, iid: stack.url + "/healthz")
    response = console.http.get(page_url + "/live.mjpg")
    assert response.status_code == 502 and "text/plain" in response.text
    stack.server.console.live = LiveVideoByFunction(lambda ctx, iid: "http://127.0.0.1:9/")
    response = console.http.get(page_url + "/live.mjpg")
    assert response.status_code == 502 and "does not answer" in response.text
