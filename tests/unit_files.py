"""Reading a systemd unit the way systemd would start it, for tests that run its command."""

from __future__ import annotations

import shlex


def unit_service(unit: str) -> tuple[list[str], dict[str, str]]:
    """The [Service] section's ExecStart as argv and its Environment= as a dict.

    systemd splits ExecStart like a shell (double quotes, backslash escapes) and then
    turns ``%%`` and ``$$`` into ``%`` and ``$``: so does this.
    """
    argv: list[str] | None = None
    env: dict[str, str] = {}
    for line in unit.splitlines():
        key, _, value = line.partition("=")
        if key == "ExecStart":
            argv = [w.replace("%%", "%").replace("$$", "$") for w in shlex.split(value)]
        elif key == "Environment":
            name, _, val = value.partition("=")
            env[name] = val
    assert argv, f"no ExecStart in\n{unit}"
    return argv, env
