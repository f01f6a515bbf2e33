"""A systemd unit that starts the device agent at boot (`panoptes agent --systemd-unit`).

An appliance runs its applications again after the machine restarts: on a Linux box
that is systemd's job. The unit runs the same `panoptes agent` command line, with the
Python interpreter that has Panoptes installed, as root (code nodes need root or
bubblewrap, as on an appliance). ``KillMode=mixed``: systemd's SIGTERM goes to the
launcher alone, which stops the worker and every application cleanly; whatever is
left when ``TimeoutStopSec`` runs out is killed.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Sequence
from pathlib import Path

#: Seconds the launcher gets to stop every runtime before systemd kills what is left.
STOP_TIMEOUT = 90

# systemd splits ExecStart like a shell on whitespace and quotes, and expands
# specifiers (%) and variables ($) everywhere: those are doubled to stay literal.
_PLAIN = re.compile(r"[A-Za-z0-9_./:=@+,-]+")


def quote(arg: str) -> str:
    """``arg`` as one word of a systemd command line."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if _PLAIN.fullmatch(arg):
        return arg
    return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'


def agent_unit(
    data_dir: Path,
    agent_args: Sequence[str],
    python: str = sys.executable,
) -> str:
    """The unit file text for ``python -m panoptes agent AGENT_ARGS`` on ``data_dir``.

    ``agent_args`` are the agent's options (``--data-dir`` among them), paths absolute.
    """
    command = " ".join(quote(a) for a in [python, "-m", "panoptes", "agent", *agent_args])
    return f"""\
[Unit]
Description=Panoptes device agent ({str(data_dir).replace("%", "%%")})
Wants=network-online.target
After=network-online.target

[Service]
Type=simple
ExecStart={command}
Environment=PYTHONUNBUFFERED=1
Restart=always
RestartSec=5
KillMode=mixed
TimeoutStopSec={STOP_TIMEOUT}

[Install]
WantedBy=multi-user.target
"""
