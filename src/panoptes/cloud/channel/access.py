"""Who is on the other end of a TLS connection, and which topics it may touch.

One policy for the embedded broker, the device endpoint and the Mosquitto ACL that
`mosquitto.py` writes: a device (certificate CN = its id, issued by the platform CA,
not revoked) reads and writes only under ``link.device_root(its id)``; the bridge
(CN = ``link.BRIDGE_IDENTITY``) under every device's root.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from panoptes.cloud.channel.certs import common_name, der_to_pem
from panoptes.cloud.services.device_view import DeviceView
from panoptes.link import BRIDGE_IDENTITY, TOPIC_ROOT, device_root

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    identity: str | None  # a device id or BRIDGE_IDENTITY; None: refused
    reason: str = ""


class Gatekeeper:
    """Maps a verified peer certificate (DER) to an identity, refusing revoked ones."""

    def __init__(self, view: DeviceView) -> None:
        self.view = view

    def identify(self, der: bytes | None) -> Verdict:
        if not der:
            return Verdict(None, "no client certificate: connect with the device certificate")
        cn = common_name(der)
        if cn == BRIDGE_IDENTITY:
            # TLS checked the chain; only the platform CA issues this CN (device
            # certificates always carry their device id).
            return Verdict(BRIDGE_IDENTITY)
        device = self.view.device_of_certificate(der_to_pem(der), datetime.now(UTC))
        if device is None or device != cn:
            return Verdict(
                None,
                f"certificate of {cn!r} is revoked, expired or unknown: the device was "
                "deleted; provision it again",
            )
        return Verdict(device)


def may_access(identity: str | None, topic_filter: str) -> bool:
    """Whether ``identity`` may publish to / subscribe to ``topic_filter``.

    A filter counts as inside a root only when the root's levels are literal (no
    ``+``/``#`` before it), so ``panoptes/v1/devices/+/desired`` is refused to devices.
    """
    if not identity:
        return False
    root = TOPIC_ROOT if identity == BRIDGE_IDENTITY else device_root(identity)
    root_levels = root.split("/")
    levels = topic_filter.split("/")
    if len(levels) <= len(root_levels):
        return False
    return levels[: len(root_levels)] == root_levels


def mosquitto_acl() -> str:
    """The same policy in Mosquitto's ACL language (identity = certificate CN)."""
    return (
        "# Written by Panoptes: devices reach only their own topics (CN = device id).\n"
        f"user {BRIDGE_IDENTITY}\n"
        f"topic readwrite {TOPIC_ROOT}/#\n"
        "\n"
        f"pattern readwrite {TOPIC_ROOT}/%u/#\n"
    )
