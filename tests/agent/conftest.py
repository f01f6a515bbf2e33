"""Agent tests: a real control plane (in a thread), its platform CA, real TLS servers."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
for folder in (TESTS / "cloud", TESTS / "agent"):
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from agent_support import pki_fixture, stack_fixture  # noqa: E402, F401  (fixtures)
