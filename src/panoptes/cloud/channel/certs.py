"""Certificates of the link's own services, issued by the platform CA.

The broker and the device endpoint present a server certificate whose subject
alternative names cover every name a device may dial (127.0.0.1, localhost, this
host's name, the advertised host); the bridge presents a client certificate with
CN = ``link.BRIDGE_IDENTITY``. They are re-issued at every start (EC keys are cheap)
so a changed host name or an expiring certificate never needs an operator.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import ssl
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from panoptes.cloud.services.provisioning import PlatformCA
from panoptes.link import BRIDGE_IDENTITY

#: Service certificates live this long; they are re-issued at every start anyway.
SERVICE_CERT_DAYS = 90


@dataclass(frozen=True)
class KeyPair:
    """A certificate and its key as PEM files (what ssl and Mosquitto load)."""

    cert: Path
    key: Path


def host_names(*extra: str | None) -> list[str]:
    """Names a device may use for this machine: loopback, its host name, ``extra``."""
    names = ["127.0.0.1", "localhost", socket.gethostname(), socket.getfqdn()]
    names += [n for n in extra if n]
    return list(dict.fromkeys(n for n in names if n and n not in ("0.0.0.0", "::")))


def _san(names: Iterable[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def issue(
    ca: PlatformCA,
    common_name: str,
    now: datetime,
    *,
    server_names: Iterable[str] | None = None,
) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM): a server certificate when ``server_names`` is given,
    else a client certificate with CN ``common_name``."""
    key = ec.generate_private_key(ec.SECP256R1())
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=SERVICE_CERT_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if server_names:
        builder = builder.add_extension(_san(server_names), critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    tmp.replace(path)


def write_pair(folder: Path, stem: str, cert_pem: bytes, key_pem: bytes) -> KeyPair:
    """``stem.pem`` and ``stem.key`` (0600) in ``folder`` (Mosquitto's layout)."""
    folder.mkdir(parents=True, exist_ok=True)
    pair = KeyPair(folder / f"{stem}.pem", folder / f"{stem}.key")
    _write_atomic(pair.key, key_pem, 0o600)
    _write_atomic(pair.cert, cert_pem, 0o644)
    return pair


def write_combined(folder: Path, stem: str, cert_pem: bytes, key_pem: bytes) -> KeyPair:
    """Certificate and key in ONE file (0600), replaced atomically: a process loading
    it while another re-issues never gets a key of one and a certificate of the other
    (several API workers may share a data dir)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}.pem"
    _write_atomic(path, cert_pem + key_pem, 0o600)
    return KeyPair(path, path)


@dataclass(frozen=True)
class LinkCredentials:
    """The CA file plus the server and bridge key pairs, on disk in one folder."""

    ca: Path
    server: KeyPair
    bridge: KeyPair

    @classmethod
    def issue_into(
        cls, folder: Path, ca: PlatformCA, now: datetime, names: Iterable[str]
    ) -> LinkCredentials:
        folder.mkdir(parents=True, exist_ok=True)
        os.chmod(folder, 0o700)
        ca_path = folder / "ca.pem"
        _write_atomic(ca_path, ca.pem.encode(), 0o644)
        server = write_combined(folder, "server", *issue(ca, "panoptes", now, server_names=names))
        bridge = write_combined(folder, "bridge", *issue(ca, BRIDGE_IDENTITY, now))
        return cls(ca_path, server, bridge)

    def server_context(self) -> ssl.SSLContext:
        """TLS for a listener: client certificates REQUIRED and checked against the CA."""
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(self.ca))
        ctx.load_cert_chain(str(self.server.cert), str(self.server.key))
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        return ctx

    def bridge_context(self) -> ssl.SSLContext:
        """TLS for the bridge's client: the broker must show a CA-issued certificate."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(self.ca))
        ctx.load_cert_chain(str(self.bridge.cert), str(self.bridge.key))
        return ctx


def common_name(der: bytes) -> str | None:
    """The CN of a DER certificate (the peer's identity once TLS verified the chain)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    except ValueError:
        return None
    value = names[0].value if names else None
    return value if isinstance(value, str) else None


def der_to_pem(der: bytes) -> bytes:
    return ssl.DER_cert_to_PEM_cert(der).encode()
