"""A real `panoptes serve` for tests: free ports, a clean user environment, start/stop."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent  # the venv's bin: panoptes, aws


_issued: set[int] = set()


def free_port() -> int:
    """A port free now and not handed out before in this test process: the kernel may
    offer the same free port twice in a row, and two parts of one stack (the device
    endpoint and Mosquitto, say) would then collide when they bind."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _issued:
            _issued.add(port)
            return port


def free_port_run(count: int = 3) -> int:
    """P such that P, P+1, ... P+count-1 are free (`serve` binds API P, device endpoint
    P+1, embedded broker P+2)."""
    for _ in range(200):
        base = free_port()
        if base + count > 65535:
            continue
        try:
            socks = []
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


def clean_env(home: Path) -> dict[str, str]:
    """A user's shell with no AWS or Panoptes settings (HOME without ~/.aws)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PANOPTES_"))}
    env["HOME"] = str(home)
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=2):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"the service did not start:\n{log.read_text()}")
            time.sleep(0.2)


@contextmanager
def running_panoptes(
    data: Path,
    home: Path,
    command: str = "serve",
    log: Path | None = None,
    *,
    port: int | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[str]:
    """`panoptes COMMAND --data-dir DATA --port P [ARGS]` as a process; yields its URL.
    ``port``: P again (a restart that devices must find where they were)."""
    port = port or free_port_run()
    log = log or data.parent / f"{command}.log"
    with log.open("a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "panoptes", command, "--data-dir", str(data),
             "--port", str(port), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(home),
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_healthy(url, proc, log)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
