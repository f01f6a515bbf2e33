"""What the device says about the machine it runs on: network, serial number, software.

Read from the host (``/sys/class/net``, the interfaces' IPv4 addresses, systemd's
timesync flag, DMI), in the shapes of Panorama's DescribeDevice (NetworkStatus).
"""

from __future__ import annotations

import contextlib
import fcntl
import socket
import struct
from pathlib import Path
from typing import Any

SYS_NET = Path("/sys/class/net")
SIOCGIFADDR, SIOCGIFNETMASK = 0x8915, 0x891B
#: systemd-timesyncd touches this file once the clock is synchronised.
NTP_SYNCED = Path("/run/systemd/timesync/synchronized")
NTP_CONF = Path("/etc/systemd/timesyncd.conf")


def software_version() -> str:
    # The imported package's own version, not the installed distribution's metadata:
    # after an OTA the worker runs another version from DATA/software on PYTHONPATH.
    from panoptes import __version__

    return __version__


def _ipv4(name: str) -> str | None:
    """``192.0.2.2/24`` (address and prefix length, as DescribeDevice shows it), or None."""
    request = struct.pack("256s", name[:15].encode())
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            addr = fcntl.ioctl(s.fileno(), SIOCGIFADDR, request)[20:24]
            mask = fcntl.ioctl(s.fileno(), SIOCGIFNETMASK, request)[20:24]
        except OSError:
            return None
    prefix = bin(int.from_bytes(mask, "big")).count("1")
    return f"{socket.inet_ntoa(addr)}/{prefix}"


def _interfaces() -> list[str]:
    """Physical interfaces first (those with a device/ link), loopback and bridges never."""
    if not SYS_NET.is_dir():
        return []
    names = [p.name for p in SYS_NET.iterdir() if p.name != "lo"]
    return sorted(names, key=lambda n: (not (SYS_NET / n / "device").exists(), n))


def _ethernet(name: str | None) -> dict[str, Any]:
    if name is None:
        return {"ConnectionStatus": "NOT_CONNECTED"}
    state = ""
    with contextlib.suppress(OSError):
        state = (SYS_NET / name / "operstate").read_text().strip()
    ip = _ipv4(name)
    out: dict[str, Any] = {
        "ConnectionStatus": "CONNECTED" if ip and state in ("up", "unknown") else "NOT_CONNECTED"
    }
    with contextlib.suppress(OSError):
        out["HwAddress"] = (SYS_NET / name / "address").read_text().strip()
    if ip:
        out["IpAddress"] = ip
    return out


def _ntp() -> dict[str, Any]:
    server = ""
    with contextlib.suppress(OSError):
        for line in NTP_CONF.read_text().splitlines():
            key, _, value = line.partition("=")
            if key.strip() == "NTP" and value.strip():
                server = value.split()[0]
    out: dict[str, Any] = {
        "ConnectionStatus": "CONNECTED" if NTP_SYNCED.exists() else "NOT_CONNECTED"
    }
    if server:
        out["NtpServerName"] = server
    return out


def network_status() -> dict[str, Any]:
    """Ethernet0Status / Ethernet1Status (the first two interfaces) and NtpStatus."""
    names: list[str | None] = [*_interfaces(), None, None]
    return {
        "Ethernet0Status": _ethernet(names[0]),
        "Ethernet1Status": _ethernet(names[1]),
        "NtpStatus": _ntp(),
    }


def serial_number() -> str:
    """The board's serial number where the firmware gives one, else the machine id."""
    for path in ("/sys/class/dmi/id/product_serial", "/etc/machine-id"):
        with contextlib.suppress(OSError):
            value = Path(path).read_text().strip()
            if value and value.lower() not in ("none", "0", "to be filled by o.e.m."):
                return value
    return socket.gethostname()
