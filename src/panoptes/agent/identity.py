"""The device's identity: from the certificates archive to a key pair and certificate.

ProvisionDevice gives the user ``certificates-omni_NAME.zip`` (ca.pem and
provisioning.json with the DeviceId, the endpoints and a one-time provisioning
credential good for 5 minutes). The agent reads it, makes its own EC P-256 key (it
never leaves the device), sends a CSR with CN = DeviceId and the token to the
control plane's exchange route, and stores what it gets under ``DATA/identity``::

    device.key          the private key (0600)
    device.pem          the device certificate, signed by the platform CA
    ca.pem              the platform CA (verifies the broker and the device endpoint)
    provisioning.json   the archive's provisioning.json (the token is spent)

On the next start the stored identity is used and the archive is not needed.
"""

from __future__ import annotations

import json
import logging
import os
import ssl
import threading
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from panoptes.link import PROVISIONING_EXCHANGE

log = logging.getLogger("panoptes.agent")

IDENTITY_DIR = "identity"
ARCHIVE_GLOB = "certificates-omni_*.zip"
KEY, CERT, CA, INFO = "device.key", "device.pem", "ca.pem", "provisioning.json"
BACKOFF_MIN, BACKOFF_MAX = 1.0, 30.0


class ProvisioningError(Exception):
    """Provisioning cannot go on; the message says why and what to do."""


@dataclass(frozen=True)
class Identity:
    """A provisioned device: where its key and certificates are, and where to connect."""

    folder: Path
    info: dict[str, Any]

    @property
    def device_id(self) -> str:
        return str(self.info["DeviceId"])

    @property
    def key_path(self) -> Path:
        return self.folder / KEY

    @property
    def cert_path(self) -> Path:
        return self.folder / CERT

    @property
    def ca_path(self) -> Path:
        return self.folder / CA

    @property
    def api_endpoint(self) -> str:
        return str(self.info["Endpoints"][0]).rstrip("/")

    @property
    def broker(self) -> tuple[str, int] | None:
        """(host, port) of ``Broker`` (mqtts://host:port), or None when the archive has none."""
        url = self.info.get("Broker")
        if not url:
            return None
        parts = urlsplit(url)
        return parts.hostname or "127.0.0.1", parts.port or 8883

    @property
    def device_endpoint(self) -> str | None:
        url = self.info.get("DeviceEndpoint")
        return str(url).rstrip("/") if url else None

    def client_tls(self) -> ssl.SSLContext:
        """Mutual TLS: trust only the platform CA, present the device certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca_path))
        ctx.load_cert_chain(str(self.cert_path), str(self.key_path))
        return ctx


# --- the archive ------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    path: Path
    ca_pem: str
    info: dict[str, Any]

    @property
    def token(self) -> str:
        return str(self.info["ProvisioningCredential"]["Token"])

    @property
    def expires(self) -> datetime | None:
        text = self.info.get("ProvisioningCredential", {}).get("ExpiresAt")
        try:
            return datetime.fromisoformat(text) if text else None
        except ValueError:
            return None


def read_archive(path: Path) -> Archive:
    """The certificates archive ProvisionDevice made; ProvisioningError if it is not one."""
    try:
        with zipfile.ZipFile(path) as zf:
            ca_pem = zf.read(CA).decode()
            info = json.loads(zf.read(INFO))
    except FileNotFoundError:
        raise ProvisioningError(f"{path}: no such file") from None
    except (zipfile.BadZipFile, KeyError, ValueError, UnicodeDecodeError) as exc:
        raise ProvisioningError(
            f"{path} is not a Panoptes certificates archive ({exc}); use the "
            "certificates-omni_NAME.zip that ProvisionDevice returned"
        ) from None
    missing = [k for k in ("DeviceId", "Endpoints", "ProvisioningCredential") if not info.get(k)]
    if missing:
        raise ProvisioningError(f"{path}: provisioning.json has no {', '.join(missing)}")
    return Archive(Path(path), ca_pem, info)


def wait_for_archive(
    folder: Path, stop: threading.Event, poll: float = 1.0, say: Callable[[str], None] = log.info
) -> Path | None:
    """The first certificates-omni_*.zip that appears in ``folder`` (a USB stick's mount)."""
    say(f"waiting for {ARCHIVE_GLOB} in {folder}")
    while not stop.is_set():
        found = sorted(Path(folder).glob(ARCHIVE_GLOB)) if Path(folder).is_dir() else []
        for path in found:
            try:
                size = path.stat().st_size
                time.sleep(0.2)  # a copy in progress still grows
                if path.stat().st_size == size:
                    return path
            except FileNotFoundError:
                continue
        stop.wait(poll)
    return None


# --- stored identity --------------------------------------------------------------------


def load(data_dir: Path) -> Identity | None:
    """The identity stored by an earlier provisioning, or None."""
    folder = Path(data_dir) / IDENTITY_DIR
    if not all((folder / n).is_file() for n in (KEY, CERT, CA, INFO)):
        return None
    return Identity(folder, json.loads((folder / INFO).read_text()))


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _key_and_csr(device_id: str) -> tuple[bytes, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, device_id)]))
        .sign(key, hashes.SHA256())
    )
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem, csr.public_bytes(serialization.Encoding.PEM).decode()


def exchange(endpoint: str, token: str, csr: str, timeout: float = 15.0) -> str:
    """POST the token and CSR; the certificate PEM. ProvisioningError when refused,
    OSError (URLError) when the control plane cannot be reached."""
    url = endpoint.rstrip("/") + PROVISIONING_EXCHANGE
    body = json.dumps({"token": token, "csr": csr}).encode()
    req = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return str(json.loads(resp.read())["certificate"])
    except urllib.error.HTTPError as exc:
        if exc.code >= 500:
            raise OSError(f"{url} answered {exc.code}") from None
        try:
            message = json.loads(exc.read()).get("message") or exc.reason
        except ValueError:
            message = exc.reason
        raise ProvisioningError(
            f"the control plane refused the provisioning credential: {message}"
        ) from None


def provision(
    archive: Archive,
    data_dir: Path,
    *,
    stop: threading.Event | None = None,
    say: Callable[[str], None] = log.info,
    now: datetime | None = None,
) -> Identity:
    """Trade the archive's one-time credential for a device certificate; store the identity.

    An unreachable control plane is retried with capped backoff (until ``stop``); a
    refused credential (expired, already used) raises ProvisioningError at once.
    """
    stop = stop or threading.Event()
    device_id = str(archive.info["DeviceId"])
    expires, now = archive.expires, now or datetime.now(UTC)
    if expires is not None and now >= expires:
        raise ProvisioningError(
            f"the provisioning credential in {archive.path.name} expired at "
            f"{expires.isoformat()}: provision the device again (ProvisionDevice) and "
            "use the new archive within 5 minutes"
        )
    key_pem, csr = _key_and_csr(device_id)
    endpoints = [str(e) for e in archive.info["Endpoints"]]
    delay = BACKOFF_MIN
    while True:
        errors = []
        for endpoint in endpoints:
            try:
                cert = exchange(endpoint, archive.token, csr)
                break
            except OSError as exc:
                errors.append(f"{endpoint}: {getattr(exc, 'reason', exc)}")
        else:
            say(f"cannot reach the control plane ({'; '.join(errors)}); retrying in {delay:g} s")
            if stop.wait(delay):
                raise ProvisioningError("stopped before the device was provisioned")
            delay = min(delay * 2, BACKOFF_MAX)
            continue
        break
    folder = Path(data_dir) / IDENTITY_DIR
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    _write(folder / KEY, key_pem, 0o600)
    _write(folder / CA, archive.ca_pem.encode())
    _write(folder / CERT, cert.encode())
    # provisioning.json last: load() takes the identity as complete only with it.
    _write(folder / INFO, (json.dumps(archive.info, indent=2) + "\n").encode())
    identity = Identity(folder, archive.info)
    say(f"provisioned as {identity.device_id}; identity stored in {folder}")
    return identity


def ensure_identity(
    data_dir: Path,
    *,
    config: Path | None = None,
    watch: Path | None = None,
    stop: threading.Event | None = None,
    say: Callable[[str], None] = log.info,
) -> Identity:
    """The stored identity, else provision from ``config`` (a zip) or the first archive
    that appears in ``watch``."""
    found = load(data_dir)
    if found is not None:
        if config is not None and Path(config).is_file():  # the stick may be gone by now
            other = read_archive(config).info.get("DeviceId")
            if other != found.device_id:
                raise ProvisioningError(
                    f"{data_dir} already holds device {found.device_id}, but {config} is for "
                    f"{other}: use another --data-dir, or remove {found.folder} to re-provision"
                )
        return found
    stop = stop or threading.Event()
    if config is None and watch is None:
        raise ProvisioningError(
            f"{data_dir} holds no device identity: pass --config certificates-omni_NAME.zip "
            "or --watch FOLDER"
        )
    path = config if config is not None else wait_for_archive(watch, stop, say=say)  # type: ignore[arg-type]
    if path is None:
        raise ProvisioningError("stopped before a certificates archive appeared")
    return provision(read_archive(path), data_dir, stop=stop, say=say)
