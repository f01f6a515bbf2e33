"""Code nodes see /panorama, /opt/aws/panorama/logs and /opt/aws/panorama/storage as
their own, in both isolation modes (a mount namespace as root, bubblewrap otherwise),
and the host's / is never written to."""

from __future__ import annotations

import json
import os
import shutil
import textwrap
from pathlib import Path

import appkit
import pytest

from panoptes.runtime import RunError, sandbox

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

PROBE_APP = textwrap.dedent(
    """
    import json
    import os

    import panoramasdk

    node = panoramasdk.node()
    seen = {
        "panorama": sorted(os.listdir("/panorama")),
        "helper": open("/panorama/helper.txt").read(),
        "opt": sorted(os.listdir("/opt")),
        "root_has_usr": os.path.isdir("/usr/bin"),
        "shm": os.path.isdir("/dev/shm"),
    }
    with open("/opt/aws/panorama/logs/probe.log", "w") as f:
        f.write("PROBE log line\\n")
    open("/panorama/written-by-app", "w").write("mine")
    open("/scratch-by-app", "w").write("private")  # lands in the node's own root
    with open("/opt/aws/panorama/storage/seen.json", "w") as f:
        json.dump(seen, f)
    frames = 0
    while True:
        streams = node.inputs.video_in.get()
        frames += len(streams)
        with open("/opt/aws/panorama/storage/frames", "w") as f:
            f.write(str(frames))
        node.outputs.video_out.put(streams)
    """
)


def _modes() -> list:
    return [
        pytest.param("namespace", marks=pytest.mark.skipif(
            os.geteuid() != 0, reason="the namespace mode needs root")),
        pytest.param("bwrap", marks=pytest.mark.skipif(
            not sandbox.bwrap_works(), reason="needs bubblewrap (apt-get install bubblewrap)")),
    ]  # fmt: skip


@pytest.mark.parametrize("mode", _modes())
def test_private_panorama_paths(tmp_path, clip, mode):
    host_panorama = Path("/panorama")
    before = sorted(host_panorama.iterdir()) if host_panorama.is_dir() else None
    opt_aws_before = Path("/opt/aws/panorama").exists()
    project = appkit.build_project(
        tmp_path / "p",
        {"application.py": PROBE_APP, "helper.txt": "from the package"},
        output=False,
    )
    frames = tmp_path / "storage" / "code_node" / "frames"
    with appkit.start_runtime(
        tmp_path, project, {"camera_node": [str(clip)]}, isolation=mode
    ) as rt:
        assert rt.isolation == mode
        appkit.wait_until(lambda: frames.exists(), timeout=60, what=f"frames under {mode}")
        appkit.wait_until(
            lambda: "PROBE log line" in rt.app_log("code_node"),
            timeout=10,
            what="the app's log file shipped to its stream",
        )
        assert rt.status()["code_node"].errors == 0, rt.app_log()
    seen = json.loads((tmp_path / "storage" / "code_node" / "seen.json").read_text())
    assert seen["panorama"] == ["application.py", "helper.txt"]
    assert seen["helper"] == "from the package"
    assert seen["root_has_usr"] and seen["shm"]
    # /opt is the host's, with the private aws/panorama beside its entries.
    host_opt = sorted(p.name for p in Path("/opt").iterdir())
    assert set(host_opt) - {"aws"} <= set(seen["opt"]) and "aws" in seen["opt"]
    # The app wrote into its own /panorama copy, not the host's / (nor created it).
    assert (tmp_path / "work" / "nodes" / "code_node" / "panorama" / "written-by-app").exists()
    after = sorted(host_panorama.iterdir()) if host_panorama.is_dir() else None
    assert after == before
    assert Path("/opt/aws/panorama").exists() == opt_aws_before
    assert not Path("/scratch-by-app").exists()


def test_an_unknown_isolation_mode_is_refused(tmp_path, clip):
    project = appkit.build_project(tmp_path / "p", {"application.py": PROBE_APP}, output=False)
    rt = appkit.start_runtime(tmp_path, project, {"camera_node": [str(clip)]}, isolation="docker")
    with pytest.raises(RunError, match="isolation 'docker' is not a sandbox mode"), rt:
        pass


NOBODY_PROBE = """
import importlib.util, subprocess, sys
spec = importlib.util.spec_from_file_location("sandbox", sys.argv[1])
sandbox = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sandbox)
root = sys.argv[2]
binds = [(root + "/app", "/panorama"), (root + "/logs", "/opt/aws/panorama/logs"),
         (root + "/storage", "/opt/aws/panorama/storage")]
script = "id -u; ls /opt/aws/panorama; echo from-app > /panorama/out; test -d /dev/shm && echo shm"
argv = sandbox.command("bwrap", binds, ["/bin/sh", "-c", script])
sys.exit(subprocess.run(argv).returncode)
"""


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("runuser") is None or not sandbox.bwrap_works(),
    reason="needs root (to become another user), runuser and bubblewrap",
)
def test_bwrap_isolates_a_non_root_user():
    """What bwrap is for: a user who cannot make a mount namespace by himself."""
    import subprocess
    import tempfile

    with tempfile.TemporaryDirectory(prefix="pnpt-nobody-") as d:  # pytest's tmp is 0700
        tmp = Path(d)
        root = tmp / "node"
        for sub in ("app", "logs", "storage"):
            (root / sub).mkdir(parents=True)
        subprocess.run(["chown", "-R", "nobody", str(tmp)], check=True)
        tmp.chmod(0o755)
        module = Path(sandbox.__file__).resolve()
        done = subprocess.run(
            ["runuser", "-u", "nobody", "--", "/usr/bin/python3", "-c", NOBODY_PROBE,
             str(module), str(root)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.split() == ["65534", "logs", "storage", "shm"]
        assert (root / "app" / "out").read_text() == "from-app\n"
