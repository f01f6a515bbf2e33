"""`panoptes up`: the README's one command starts the platform on embedded defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve_support import running_panoptes


@pytest.mark.e2e
def test_up_starts_the_control_plane_and_says_how_to_use_it(tmp_path: Path) -> None:
    data, log = tmp_path / "d", tmp_path / "up.log"
    with running_panoptes(data, tmp_path, command="up", log=log):
        # SQLite database, object store and keys are in the data dir.
        assert (data / "panoptes.db").is_file()
        assert (data / "credentials").is_file()
    text = log.read_text()
    assert "control plane" in text
    assert f'eval "$(panoptes env --data-dir {data})"' in text


@pytest.mark.e2e
@pytest.mark.slow
def test_up_demo_shows_the_annotated_demo_in_the_console(tmp_path: Path) -> None:
    """The README's promise: `up --demo`, open the printed link, sign in, see video."""
    import re
    import time

    import cv2
    import httpx
    import numpy as np

    from panoptes.media.testcamera import unavailable

    if (why := unavailable()) is not None:
        pytest.skip(why)
    data, log = tmp_path / "d", tmp_path / "up.log"
    with running_panoptes(data, tmp_path, command="up", log=log, args=("--demo",)) as url:
        deadline = time.monotonic() + 300  # the first run compiles the demo's model
        link = None
        while link is None and time.monotonic() < deadline:
            found = re.search(r"Watch it live: (\S+)", log.read_text())
            link = found.group(1) if found else None
            assert "error:" not in log.read_text(), log.read_text()[-3000:]
            time.sleep(1)
        assert link, log.read_text()[-3000:]
        assert link.startswith(url + "/console/instances/")
        user, password = (data / "console-password").read_text().split()  # name, password
        with httpx.Client(base_url=url, timeout=30) as browser:
            form = browser.get("/console/signin").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form).group(1)
            signed = browser.post(
                "/console/signin",
                data={"csrf_token": token, "username": user, "password": password},
            )
            assert signed.status_code == 303
            page = browser.get(link)
            assert page.status_code == 200 and "panoptes-demo" in page.text
            # The page's live video: the device's output relayed by the console.
            pictures = []
            with browser.stream("GET", link.removeprefix(url) + "/live.mjpg") as stream:
                buf = b""
                for chunk in stream.iter_bytes():
                    buf += chunk
                    while (start := buf.find(b"\xff\xd8")) >= 0 and (
                        end := buf.find(b"\xff\xd9", start)
                    ) >= 0:
                        jpeg, buf = buf[start : end + 2], buf[end + 2 :]
                        pictures.append(cv2.imdecode(np.frombuffer(jpeg, np.uint8), 1))
                    if len(pictures) >= 30:
                        break
    # Stopping `up` stops what it started: the agent, its apps, the demo camera.
    deadline = time.monotonic() + 30
    while (left := _processes_mentioning(str(tmp_path))) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, left
    assert all(p is not None and p.shape[1] >= 320 for p in pictures)
    # Annotated: the label text at the top left stays put while the test pattern's ball
    # moves, so pixels bright in pictures two seconds apart are the labels.
    h, w = pictures[0].shape[:2]
    bright = [(p[: h // 8, : w // 2] > 200).all(axis=2) for p in (pictures[0], pictures[-1])]
    assert (bright[0] & bright[1]).sum() > 50, "no label text in the live picture"


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit():
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
                if text in cmd:
                    found.append(cmd[:200])
        except OSError:
            continue
    return found
