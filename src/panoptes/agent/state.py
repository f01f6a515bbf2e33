"""What the agent remembers across restarts: ``DATA/state.json``.

The last desired state it applied and, per application instance, what it did with it
(the status it reached, whether it was replaced). After a restart of the agent or of
the machine, the reconciler starts again every instance that ran, from this file and
the on-disk project folders and caches, without the control plane.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

STATE_FILE = "state.json"


@dataclass
class InstanceRecord:
    status: str  # the Panorama ApplicationInstanceStatus the device reached
    description: str = ""
    replaced: bool = False  # stopped because the instance that replaced it runs
    signals: dict[str, str] = field(default_factory=dict)


@dataclass
class AgentState:
    desired: dict[str, Any] | None = None
    instances: dict[str, InstanceRecord] = field(default_factory=dict)

    @property
    def revision(self) -> int | None:
        return None if self.desired is None else self.desired.get("Revision")

    @classmethod
    def load(cls, data_dir: Path) -> AgentState:
        path = Path(data_dir) / STATE_FILE
        try:
            doc = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except ValueError:
            # A torn write cannot happen (atomic replace); a hand-edited file can.
            path.rename(path.with_suffix(".json.bad"))
            return cls()
        return cls(
            desired=doc.get("Desired"),
            instances={k: InstanceRecord(**v) for k, v in doc.get("Instances", {}).items()},
        )

    def save(self, data_dir: Path) -> None:
        path = Path(data_dir) / STATE_FILE
        tmp = path.with_suffix(".json.tmp")
        doc = {
            "Desired": self.desired,
            "Instances": {k: asdict(v) for k, v in self.instances.items()},
        }
        # The file holds camera passwords (in the desired state): owner only.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
