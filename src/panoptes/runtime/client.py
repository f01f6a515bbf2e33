"""The application side of the runtime: what panoramasdk uses, and nothing more.

The runtime starts each code node with two environment variables:

* ``PANOPTES_NODE``: the graph node this process is (``node()`` binds to it);
* ``PANOPTES_RUNTIME_ADDR``: the node's runtime folder, holding ``config.json``
  (its ports, parameter values, frame rings and model server addresses).

Frames come from shared-memory rings (panoptes.media.ring), models are called
through the model servers' clients; no frame is ever pickled or sent on a socket.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_NODE = "PANOPTES_NODE"
ENV_ADDR = "PANOPTES_RUNTIME_ADDR"
CONFIG = "config.json"
STARTED = "started"


class NotUnderRuntimeError(RuntimeError):
    """node() was created outside a process the Panoptes runtime started."""


@dataclass(frozen=True)
class NodeConfig:
    node: str
    folder: Path
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    models: dict[str, str]

    def mark_started(self) -> None:
        """Tell the supervisor the application got past its start (first get/put/call).

        Called on every get/put/call, so after the first time it costs one lookup: the
        marker is written once per process (a restarted process writes it again).
        """
        if _marked.get(self.folder) == os.getpid():
            return
        marker = self.folder / STARTED
        with contextlib.suppress(OSError):  # a read-only folder must not break the app
            marker.write_text(str(os.getpid()))
        _marked[self.folder] = os.getpid()


_cached: NodeConfig | None = None
_marked: dict[Path, int] = {}  # node folder -> the pid that wrote its "started" marker


def load() -> NodeConfig:
    """This process's node configuration (read once)."""
    global _cached
    node, addr = os.environ.get(ENV_NODE), os.environ.get(ENV_ADDR)
    if _cached is not None and (_cached.node, str(_cached.folder)) == (node, addr):
        return _cached
    if not node or not addr:
        raise NotUnderRuntimeError(
            "panoramasdk.node() needs the Panoptes runtime: this process was not started "
            f"by it ({ENV_NODE}/{ENV_ADDR} are not set). Run the application with "
            "`panoptes app run`."
        )
    folder = Path(addr)
    try:
        doc = json.loads((folder / CONFIG).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NotUnderRuntimeError(f"cannot read the runtime's node configuration: {exc}") from None
    if doc.get("node") != node:
        raise NotUnderRuntimeError(f"node configuration is for {doc.get('node')!r}, not {node!r}")
    _cached = NodeConfig(node, folder, doc["inputs"], doc["outputs"], doc.get("models", {}))
    return _cached


def write(folder: Path, node: str, inputs: dict, outputs: dict, models: dict) -> Path:
    """The runtime's side: write a node's configuration (atomically)."""
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"node": node, "inputs": inputs, "outputs": outputs, "models": models}
    tmp = folder / (CONFIG + ".tmp")
    tmp.write_text(json.dumps(doc, indent=2))
    tmp.replace(folder / CONFIG)
    return folder / CONFIG
