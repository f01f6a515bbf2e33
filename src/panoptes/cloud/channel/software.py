"""`panoptes software publish`: put a Panoptes wheel where devices' OTA jobs find it.

The wheel goes to ``panoptes-software/VERSION/<wheel file name>`` through the
control plane's S3 API (the same path `package-application` uses for assets); the
control plane reads that bucket (`panoptes.cloud.services.software`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from panoptes.cloud.services.software import BUCKET

#: name-version(-build)?-python-abi-platform.whl (PEP 427)
_WHEEL = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


class SoftwareError(ValueError):
    """A wheel that cannot be published, with the fix in the message."""


def wheel_version(path: Path) -> str:
    m = _WHEEL.match(path.name)
    if m is None:
        raise SoftwareError(
            f"{path.name} is not a wheel file name (NAME-VERSION-PY-ABI-PLATFORM.whl): "
            "build one with `pip wheel .` or pass --version"
        )
    return m["version"]


def publish_wheel(s3: Any, wheel: Path, version: str | None = None) -> str:
    """Upload ``wheel`` as software image ``version`` (default: the wheel's); returns it."""
    if not wheel.is_file():
        raise SoftwareError(f"{wheel}: no such file")
    if not wheel.name.endswith(".whl"):
        raise SoftwareError(f"{wheel.name}: a software image is a Panoptes wheel (.whl)")
    version = version or wheel_version(wheel)
    if not re.fullmatch(r"[0-9A-Za-z][0-9A-Za-z.+_-]*", version):
        raise SoftwareError(f"--version {version!r}: use letters, digits and . + _ -")
    try:
        s3.head_bucket(Bucket=BUCKET)
    except Exception:
        s3.create_bucket(Bucket=BUCKET)
    s3.upload_file(str(wheel), BUCKET, f"{version}/{wheel.name}")
    return version
