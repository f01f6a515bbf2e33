"""The output node's MJPEG endpoint during a run: real multipart JPEG with the application's
annotations drawn, and the rule that the most recently started application owns a
shared output."""

from __future__ import annotations

import functools
import json
import textwrap
import time
import urllib.request
from pathlib import Path

import appkit
import cv2
import numpy as np
import pytest

from panoptes.media import ring as ringmod
from panoptes.runtime import Runtime, make_plan
from panoptes.spec import resolve

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
_until = functools.partial(appkit.wait_until, timeout=60.0)

LABEL_APP = textwrap.dedent(
    """
    import panoramasdk

    node = panoramasdk.node()
    while True:
        streams = node.inputs.video_in.get()
        for s in streams:
            for i, y in enumerate((0.25, 0.35, 0.45)):
                s.add_label(f"LABEL {i} WWWWWWWW", 0.1, y)
            s.add_rect(0.1, 0.15, 0.6, 0.5)
        node.outputs.video_out.put(streams)
    """
)


def _runtime(tmp: Path, clip: Path, **kw) -> Runtime:
    project = appkit.build_project(tmp / "p", {"application.py": LABEL_APP})
    app = resolve(project / "graphs/app/graph.json", None, project / "packages", deployment=False)
    plan = make_plan(app, project, {"camera_node": [str(clip)]})
    return Runtime(plan, tmp / "work", output_dir=tmp / "out", loop=True, **kw)


def _best_match(frame: np.ndarray, inputs: list[np.ndarray], region) -> np.ndarray:
    ys, xs = region
    diffs = [np.abs(frame[ys, xs].astype(int) - i[ys, xs].astype(int)).mean() for i in inputs]
    return inputs[int(np.argmin(diffs))]


def _diff(a: np.ndarray, b: np.ndarray, region) -> float:
    ys, xs = region
    return float(np.abs(a[ys, xs].astype(int) - b[ys, xs].astype(int)).mean())


def test_mjpeg_stream_carries_the_annotated_output(tmp_path, long_clip):
    inputs = appkit.read_frames(long_clip)
    h, w = inputs[0].shape[:2]
    with _runtime(tmp_path, long_clip) as rt:
        _until(lambda: rt.output_url is not None and rt.output_frames > 5, what="output frames")
        url = rt.output_url
        assert url is not None and url.startswith("http://127.0.0.1:")
        parts = appkit.read_mjpeg(url + "stream.mjpg", parts=6)
    assert len(parts) == 6
    images = [cv2.imdecode(np.frombuffer(p, np.uint8), cv2.IMREAD_COLOR) for p in parts]
    assert all(img is not None and img.shape == (h, w, 3) for img in images)
    # Labels and the rectangle sit in x 0.1..0.6, y 0.15..0.5; the lower left is left
    # alone and finds the matching input frame (the clip loops).
    control = (slice(int(0.65 * h), h - 4), slice(4, int(0.5 * w)))
    label_band = (slice(int(0.15 * h), int(0.5 * h)), slice(int(0.1 * w), int(0.6 * w)))
    for img in images:
        ref = _best_match(img, inputs, control)
        noise = _diff(img, ref, control)
        changed = _diff(img, ref, label_band)
        assert noise < 8, noise
        assert changed > 3 * noise + 5, (changed, noise)
    # Frames move: not the same picture sent again and again.
    assert len(set(parts)) >= 2


def _sink(rt: Runtime) -> dict:
    try:
        return json.loads((rt.workdir / "sink.json").read_text())
    except (OSError, ValueError):
        return {}


def _latest_jpeg(url: str) -> bytes:
    with urllib.request.urlopen(url + "frame.jpg", timeout=10) as r:
        return r.read()


def test_most_recently_started_app_owns_the_shared_output(tmp_path, long_clip, monkeypatch):
    owner = tmp_path / "output-owner"
    with _runtime(tmp_path / "first", long_clip, owner_file=owner) as first:
        _until(lambda: first.output_frames > 5, what="output from the first app")
        assert _sink(first)["owner"] is True
        assert owner.read_text() == first.instance_id
        assert len(appkit.read_mjpeg(first.output_url + "stream.mjpg", parts=2)) == 2
        # Ring names are per process and node: a second runtime in this same process
        # (two apps, same node names) needs its own, as its own process would have.
        plain = ringmod.segment_name
        monkeypatch.setattr(ringmod, "segment_name", lambda tag: plain(f"second-{tag}"))
        with _runtime(tmp_path / "second", long_clip, owner_file=owner) as second:
            _until(lambda: second.output_frames > 5, what="output from the second app")
            assert owner.read_text() == second.instance_id
            _until(lambda: _sink(first).get("owner") is False, timeout=10, what="hand-over")
            assert _sink(second)["owner"] is True
            # The newer app's pictures move; the older one no longer publishes any.
            assert len(set(appkit.read_mjpeg(second.output_url + "stream.mjpg", parts=4))) >= 2
            frozen = _latest_jpeg(first.output_url)
            frames = first.output_frames
            time.sleep(1.5)
            assert _latest_jpeg(first.output_url) == frozen
            # ...while its own recording goes on.
            _until(lambda: first.output_frames > frames + 5, timeout=10, what="first's MP4")
