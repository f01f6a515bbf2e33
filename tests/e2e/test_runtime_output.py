"""Two application instances in ONE process (as the device agent runs them), both with
an output node: both run, the most recently started one owns the shared output, and
when it stops the other one is shown again."""

from __future__ import annotations

import textwrap

import appkit
import pytest

from panoptes.runtime import OWNER_ENV, shared_output_owner_file

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = textwrap.dedent(
    """
    import panoramasdk

    node = panoramasdk.node()
    while True:
        streams = node.inputs.video_in.get()
        for s in streams:
            s.add_label("hello", 0.1, 0.1)
        node.outputs.video_out.put(streams)
    """
)


def test_default_owner_file(monkeypatch, tmp_path):
    monkeypatch.setenv(OWNER_ENV, str(tmp_path / "owner"))
    assert shared_output_owner_file() == tmp_path / "owner"
    monkeypatch.delenv(OWNER_ENV)
    monkeypatch.setattr("os.geteuid", lambda: 0)
    assert str(shared_output_owner_file()) == "/run/panoptes/output-owner"
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    assert shared_output_owner_file() == tmp_path / "xdg" / "panoptes" / "output-owner"


def test_two_runtimes_in_one_process_the_newest_owns_the_output(tmp_path, long_clip, monkeypatch):
    owner = tmp_path / "run" / "output-owner"
    monkeypatch.setenv(OWNER_ENV, str(owner))  # the machine's default file, kept in tmp
    project = appkit.build_project(tmp_path / "p", {"application.py": APP})
    cams = {"camera_node": [str(long_clip)]}
    kw = {"loop": True, "mp4": True, "mjpeg_port": 0, "shared_output": True}
    older = appkit.start_runtime(tmp_path / "a", project, cams, **kw)
    newer = appkit.start_runtime(tmp_path / "b", project, cams, **kw)
    with older:
        appkit.wait_until(lambda: older.output_frames > 5, what="the first app's output")
        assert older.owns_output is True and owner.read_text() == older.instance_id
        with newer:
            appkit.wait_until(lambda: newer.output_frames > 5, what="the second app's output")
            assert owner.read_text() == newer.instance_id
            appkit.wait_until(lambda: older.owns_output is False, timeout=10, what="hand-over")
            assert newer.owns_output is True
            # Both keep running (their recordings grow), only the newer one is shown.
            a, b = older.output_frames, newer.output_frames
            appkit.wait_until(
                lambda: older.output_frames > a + 5 and newer.output_frames > b + 5,
                what="both apps still running",
            )
            assert set(older.rings).isdisjoint(newer.rings)
            assert older.status()["code_node"].errors == newer.status()["code_node"].errors == 0
        # The newer one stopped: the output is handed back to the one still running.
        assert not owner.exists()
        appkit.wait_until(lambda: older.owns_output is True, timeout=10, what="hand-back")
    assert appkit.read_frames(tmp_path / "a" / "out" / "output_node.mp4")
    assert appkit.read_frames(tmp_path / "b" / "out" / "output_node.mp4")
