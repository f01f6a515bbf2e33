"""Mosquitto as the broker: its configuration, certificates and ACL, from the platform CA.

`write_config(out, ca, ...)` writes everything a Mosquitto TLS listener needs to
enforce the link's policy (`access.py`) on its own:

    ca.pem, server.pem, server.key   the platform CA; the broker's certificate
    acl                              devices: panoptes/v1/devices/<CN>/#; bridge: all
    mosquitto.conf                   the listener: client certificates required, the
                                     certificate's CN is the user name

Run ``mosquitto -c OUT/mosquitto.conf`` and ``panoptes serve --broker
mqtts://HOST:PORT``; the control plane's bridge connects with its own CA-issued
certificate (CN ``link.BRIDGE_IDENTITY``). Limit: Mosquitto reads no revocation
list from us, so a deleted device's certificate still completes the TLS handshake
there; the ACL confines it to its own topics and the bridge drops its reports
(the device no longer exists). The device endpoint refuses it (403).
"""

from __future__ import annotations

import os
import pwd
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from panoptes.cloud.channel.access import mosquitto_acl
from panoptes.cloud.channel.certs import issue, write_pair
from panoptes.cloud.services.provisioning import PlatformCA


def config_text(out: Path, host: str, port: int, user: str | None = None) -> str:
    # Started as root, Mosquitto drops to `user` (default "mosquitto") before it reads
    # the key: that user must be able to read server.key.
    run_as = f"user {user}\n" if user else ""
    return (
        "# Written by Panoptes (panoptes broker-config): the device link's TLS listener.\n"
        f"{run_as}"
        "per_listener_settings false\n"
        "allow_anonymous false\n"
        f"acl_file {out / 'acl'}\n"
        f"listener {port} {host}\n"
        "protocol mqtt\n"
        f"cafile {out / 'ca.pem'}\n"
        f"certfile {out / 'server.pem'}\n"
        f"keyfile {out / 'server.key'}\n"
        "tls_version tlsv1.2\n"
        "require_certificate true\n"
        "use_identity_as_username true\n"
    )


def write_config(
    out: Path,
    ca: PlatformCA,
    now: datetime,
    *,
    host: str = "0.0.0.0",
    port: int = 8883,
    names: Iterable[str] = (),
    user: str | None = None,
) -> Path:
    """Write the listener's files into ``out``; returns the mosquitto.conf path.

    ``user``: the account Mosquitto runs as; server.key is handed to it when this
    process may do so (root), else it stays readable by its owner only."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    (out / "ca.pem").write_text(ca.pem)
    pair = write_pair(out, "server", *issue(ca, "panoptes-broker", now, server_names=list(names)))
    (out / "acl").write_text(mosquitto_acl())
    _give(pair.key, user or "mosquitto")
    conf = out / "mosquitto.conf"
    conf.write_text(config_text(out, host, port, user))
    return conf


def _give(path: Path, user: str) -> None:
    """chown ``path`` to ``user`` when we are root and the user exists."""
    if os.geteuid() != 0:
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return
    os.chown(path, entry.pw_uid, entry.pw_gid)
