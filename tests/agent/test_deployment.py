"""From a desired instance to the runtime's inputs: camera URLs and the package list."""

from __future__ import annotations

import pytest

from panoptes.agent.deployment import DeploymentError, needed_packages, stream_url


def test_the_camera_credentials_go_into_the_stream_url_escaped() -> None:
    cam = {"StreamUrl": "rtsp://10.0.0.5:554/live", "Username": "admin", "Password": "pa:ss/w@rd"}
    assert stream_url(cam) == "rtsp://admin:pa%3Ass%2Fw%40rd@10.0.0.5:554/live"
    assert stream_url({**cam, "Password": None}) == "rtsp://admin@10.0.0.5:554/live"
    # A URL that carries its own credentials, or a camera with none, is left alone.
    own = {**cam, "StreamUrl": "rtsp://u:p@10.0.0.5/live"}
    assert stream_url(own) == "rtsp://u:p@10.0.0.5/live"
    assert stream_url({"StreamUrl": "rtsp://10.0.0.5/live"}) == "rtsp://10.0.0.5/live"


def test_every_package_of_the_plan_comes_from_the_desired_state_at_its_patch() -> None:
    plan = {
        "packages": [
            {"account": "111", "name": "CODE", "version": "1.0", "patchVersion": "aa"},
            {"account": "panorama", "name": "hdmi_data_sink", "version": "1.0",
             "patchVersion": "x"},
            None,
        ]
    }  # fmt: skip
    code = {"Account": "111", "Name": "CODE", "Version": "1.0", "PatchVersion": "aa"}
    other_patch = {**code, "PatchVersion": "bb"}
    assert needed_packages({"Plan": plan}, [other_patch, code]) == [code]
    with pytest.raises(DeploymentError, match=r"111::CODE 1\.0 \(patch aa\) is not in"):
        needed_packages({"Plan": plan}, [other_patch])


def test_a_camera_source_never_logs_the_password_the_agent_put_into_its_url() -> None:
    from panoptes.media.camera_url import mask as redact

    url = stream_url({"StreamUrl": "rtsp://cam:554/x", "Username": "u", "Password": "s3cr:t"})
    message = f"cannot reach {url} (Connection refused: '{url}')"
    assert "s3cr" not in redact(message)
    assert redact(message).count("rtsp://u:***@cam:554/x") == 2
    assert redact("/dev/video0") == "/dev/video0"
