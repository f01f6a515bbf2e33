"""Real Panoptes wheels of other versions, and a software endpoint that serves them.

`build_wheel` copies this worktree's sources to a temporary project, changes the
version (pyproject.toml and panoptes.__version__), appends ``extra`` to
panoptes/__init__.py (how the tests make broken versions) and runs
``pip wheel --no-deps --no-build-isolation``: about a second per wheel.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from panoptes import link

REPO = Path(__file__).resolve().parents[2]


def build_wheel(version: str, out: Path, extra: str = "") -> Path:
    project = out / f"project-{version}"
    shutil.copytree(
        REPO / "src",
        project / "src",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    shutil.copy(REPO / "README.md", project / "README.md")
    pyproject = (REPO / "pyproject.toml").read_text()
    pyproject = re.sub(r'(?m)^version = ".*"$', f'version = "{version}"', pyproject, count=1)
    (project / "pyproject.toml").write_text(pyproject)
    init = project / "src" / "panoptes" / "__init__.py"
    text = re.sub(r'__version__ = ".*"', f'__version__ = "{version}"', init.read_text())
    init.write_text(text + extra)
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("-q", "-w", str(out), str(project)),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    shutil.rmtree(project)
    return out / f"panoptes-{version}-py3-none-any.whl"


def image(wheel: Path, version: str) -> dict:
    """The desired state's Software.Images entry for ``wheel``."""
    data = wheel.read_bytes()
    return {
        "Path": f"{link.DEVICE_HTTP_SOFTWARE}/{version}",
        "Sha256": hashlib.sha256(data).hexdigest(),
        "Size": len(data),
    }


@contextmanager
def software_endpoint(wheels: dict[str, Path], desired: dict | None = None) -> Iterator[str]:
    """A plain-HTTP stand-in for the device endpoint's software route (and its desired
    state route, when ``desired`` is given): yields its URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            prefix = link.DEVICE_HTTP_SOFTWARE + "/"
            wheel = wheels.get(self.path[len(prefix) :]) if self.path.startswith(prefix) else None
            if self.path == link.DEVICE_HTTP_DESIRED and desired is not None:
                data = link.encode(desired)
            elif wheel is not None:
                data = wheel.read_bytes()
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
