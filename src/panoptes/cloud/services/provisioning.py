"""Device provisioning: the platform CA, ProvisionDevice, the certificate exchange.

ProvisionDevice answers ``Certificates``: a zip archive (the protocol layer base64s
it, and the guide's script decodes it to ``certificates-omni_NAME.zip``) holding

    ca.pem             the platform CA certificate the device must trust
    provisioning.json  {"FormatVersion": 1, "DeviceId", "DeviceName", "AccountId",
                        "Region", "Endpoints": [url, ...],
                        "Broker": "mqtts://host:port", "DeviceEndpoint": "https://host:port",
                        "ProvisioningCredential": {"Token", "ExpiresAt"}}
    network.json       the request's NetworkingConfiguration ({} when absent)

The token is good once, for 5 minutes: the device agent generates its own key pair
and calls `exchange_provisioning_credential(token, csr_pem)` (over an HTTP route),
getting back its certificate signed by the CA. Only the token's SHA-256 is stored.
DeleteDevice revokes every certificate issued to the device.
"""

from __future__ import annotations

import io
import json
import os
import secrets as _random
import zipfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from panoptes.cloud.db.models import Device, DeviceCertificate, ProvisioningCredential
from panoptes.cloud.errors import AccessDenied, Conflict, QuotaExceeded, ValidationError
from panoptes.cloud.services import states
from panoptes.cloud.services.common import Call, lock_account, new_id, set_tags, sha256_hex

CA_DIR = "ca"


@dataclass(frozen=True)
class PlatformCA:
    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def pem(self) -> str:
        return self.certificate.public_bytes(serialization.Encoding.PEM).decode()

    @classmethod
    def load_or_create(cls, data_dir: Path, now: datetime) -> PlatformCA:
        folder = Path(data_dir) / CA_DIR
        key_path, cert_path = folder / "ca.key", folder / "ca.pem"
        if key_path.exists() and cert_path.exists():
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
            assert isinstance(key, ec.EllipticCurvePrivateKey)
            cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
            return cls(key, cert)
        folder.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Panoptes platform CA")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(key, hashes.SHA256())
        )
        key_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(key, cert)

    def issue(
        self, csr: x509.CertificateSigningRequest, device: Device, now: datetime, days: int
    ) -> x509.Certificate:
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, device.id),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, device.account_id),
            ]
        )
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(csr.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )


# --- ProvisionDevice ------------------------------------------------------------------


def provision_device(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    lock_account(call)
    limits = call.env.settings.limits
    count = call.session.scalar(
        select(func.count()).select_from(Device).where(Device.account_id == call.account)
    )
    if (count or 0) >= limits.devices:
        raise QuotaExceeded(
            f"an account has at most {limits.devices} devices per Region",
            "panorama-devices",
            resource_type="device",
        )
    name = p["Name"]
    clash = call.session.scalar(
        select(Device.id).where(Device.account_id == call.account, Device.name == name)
    )
    if clash:
        raise Conflict(f"a device named {name!r} exists already", clash, "device")
    networking = p.get("NetworkingConfiguration")
    _check_networking(networking)
    now = call.now
    device = Device(
        id=new_id("device"),
        account_id=call.account,
        region=call.ctx.region,
        name=name,
        description=p.get("Description"),
        device_type="PANORAMA_APPLIANCE",
        brand="AWS_PANORAMA",
        provisioning_status="AWAITING_PROVISIONING",
        networking_configuration=networking,
        created=now,
        updated=now,
    )
    call.session.add(device)
    token = _random.token_urlsafe(32)
    expires = now + call.env.settings.provisioning_ttl
    call.session.flush()
    call.session.add(
        ProvisioningCredential(
            token_sha256=sha256_hex(token.encode()), device_id=device.id, expires=expires
        )
    )
    call.session.flush()
    device_arn = call.arn("device", device.id)
    set_tags(call, device_arn, p.get("Tags"))
    archive = _archive(call, device, token, expires, networking or {})
    return {
        "Arn": device_arn,
        "Certificates": archive,
        "DeviceId": device.id,
        "IotThingName": device.id,
        "Status": device.provisioning_status,
    }


def _check_networking(networking: dict[str, Any] | None) -> None:
    for port in ("Ethernet0", "Ethernet1"):
        eth = (networking or {}).get(port)
        if (
            eth
            and eth.get("ConnectionType") == "STATIC_IP"
            and not eth.get("StaticIpConnectionInfo")
        ):
            field = f"NetworkingConfiguration.{port}.StaticIpConnectionInfo"
            raise ValidationError(
                f"{field}: required when ConnectionType is STATIC_IP",
                fields=[{"Name": field, "Message": "required when ConnectionType is STATIC_IP"}],
                reason="FIELD_VALIDATION_FAILED",
            )


def _archive(call: Call, device: Device, token: str, expires: datetime, net: dict) -> bytes:
    info = {
        "FormatVersion": 1,
        "DeviceId": device.id,
        "DeviceName": device.name,
        "AccountId": device.account_id,
        "Region": device.region,
        "Endpoints": list(call.env.settings.endpoints),
        "Broker": call.env.settings.broker_url,
        "DeviceEndpoint": call.env.settings.device_endpoint,
        "ProvisioningCredential": {"Token": token, "ExpiresAt": expires.isoformat()},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("ca.pem", call.env.ca(call.now).pem)
        zf.writestr("provisioning.json", json.dumps(info, indent=2) + "\n")
        zf.writestr("network.json", json.dumps(net, indent=2) + "\n")
    return buf.getvalue()


# --- the device side of provisioning --------------------------------------------------


def exchange_provisioning_credential(
    session: Session, ca: PlatformCA, token: str, csr_pem: str | bytes, now: datetime, days: int
) -> str:
    """Trade a one-time provisioning token and a CSR for the device's certificate (PEM)."""
    cred = session.get(ProvisioningCredential, sha256_hex(token.encode()))
    if cred is None or cred.used is not None:
        raise AccessDenied("unknown or already used provisioning credential")
    if now >= cred.expires:
        raise AccessDenied("the provisioning credential expired: provision the device again")
    try:
        csr = x509.load_pem_x509_csr(csr_pem.encode() if isinstance(csr_pem, str) else csr_pem)
    except ValueError:
        raise ValidationError("the certificate signing request is not PEM") from None
    if not csr.is_signature_valid:
        raise ValidationError("the certificate signing request's signature is invalid")
    device = session.get(Device, cred.device_id)
    assert device is not None  # cascades remove credentials with their device
    device.provisioning_status = states.DEVICE.next(
        device.provisioning_status, "credential_exchanged", device.id
    )
    device.updated = now
    cred.used = now
    cert = ca.issue(csr, device, now, days)
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    session.add(
        DeviceCertificate(
            serial=format(cert.serial_number, "x"),
            device_id=device.id,
            account_id=device.account_id,
            certificate_pem=pem,
            issued=now,
            not_after=now + timedelta(days=days),
        )
    )
    session.flush()
    return pem


def device_of_certificate(
    session: Session, ca: PlatformCA, cert_pem: str | bytes, now: datetime
) -> str | None:
    """The device a client certificate belongs to, or None (unknown, revoked, expired)."""
    try:
        raw = cert_pem.encode() if isinstance(cert_pem, str) else cert_pem
        cert = x509.load_pem_x509_certificate(raw)
        cert.verify_directly_issued_by(ca.certificate)
    except Exception:  # any parse or signature failure: not one of ours
        return None
    row = session.get(DeviceCertificate, format(cert.serial_number, "x"))
    if row is None or row.revoked is not None or now >= row.not_after:
        return None
    return row.device_id


def revoke_certificates(session: Session, device_id: str, now: datetime) -> int:
    rows = session.scalars(
        select(DeviceCertificate).where(
            DeviceCertificate.device_id == device_id, DeviceCertificate.revoked.is_(None)
        )
    ).all()
    for row in rows:
        row.revoked = now
    return len(rows)
