"""Provisioning against a real control plane: archive -> key + CSR -> certificate, stored."""

from __future__ import annotations

import json
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from api_helpers import Stack, csr_pem
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from panoptes.agent import identity
from panoptes.agent.identity import ProvisioningError
from panoptes.cloud.errors import AccessDenied
from panoptes.runtime.services import PortForwarder
from serve_support import free_port


def _archive(stack: Stack, folder: Path, name: str, endpoints: list[str] | None = None) -> Path:
    out = stack.client().provision_device(Name=name)
    path = folder / f"certificates-omni_{name}.zip"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(out["Certificates"])
    if endpoints is not None:  # the same archive, pointing somewhere else
        with zipfile.ZipFile(path) as zf:
            files = {n: zf.read(n) for n in zf.namelist()}
        info = json.loads(files["provisioning.json"])
        info["Endpoints"] = endpoints
        files["provisioning.json"] = json.dumps(info).encode()
        with zipfile.ZipFile(path, "w") as zf:
            for n, data in files.items():
                zf.writestr(n, data)
    return path


def _status(stack: Stack, device_id: str) -> str:
    return stack.client().describe_device(DeviceId=device_id)["ProvisioningStatus"]


def test_provisions_once_then_reuses_the_stored_identity(stack: Stack, tmp_path: Path) -> None:
    archive = _archive(stack, tmp_path / "usb", "lobby-1")
    data = tmp_path / "data"
    ident = identity.ensure_identity(data, config=archive)

    device_id = json.loads(zipfile.ZipFile(archive).read("provisioning.json"))["DeviceId"]
    assert ident.device_id == device_id
    assert _status(stack, device_id) != "AWAITING_PROVISIONING"
    folder = data / "identity"
    assert (folder / "device.key").stat().st_mode & 0o777 == 0o600
    cert = x509.load_pem_x509_certificate((folder / "device.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((folder / "ca.pem").read_bytes())
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == device_id
    key = serialization.load_pem_private_key((folder / "device.key").read_bytes(), None)
    assert cert.public_key() == key.public_key()  # the key made here is the one certified
    assert stack.view.device_of_certificate(cert.public_bytes(serialization.Encoding.PEM)) == (
        device_id
    )
    # A second start uses what is stored: the spent token is not sent again (it would
    # be refused), with or without the archive at hand.
    before = (folder / "device.pem").read_bytes()
    assert identity.ensure_identity(data, config=archive).device_id == device_id
    assert identity.ensure_identity(data).device_id == device_id
    archive.unlink()  # the USB stick was taken out
    assert identity.ensure_identity(data, config=archive).device_id == device_id
    assert (folder / "device.pem").read_bytes() == before


def test_a_used_credential_is_refused_with_the_control_planes_reason(
    stack: Stack, tmp_path: Path
) -> None:
    archive = _archive(stack, tmp_path, "lobby-2")
    identity.ensure_identity(tmp_path / "first", config=archive)
    with pytest.raises(ProvisioningError, match=r"refused.*already used"):
        identity.ensure_identity(tmp_path / "second", config=archive)
    assert identity.load(tmp_path / "second") is None  # nothing half-stored


def test_an_expired_credential_is_refused_before_and_by_the_control_plane(
    stack: Stack, tmp_path: Path
) -> None:
    archive = identity.read_archive(_archive(stack, tmp_path, "lobby-3"))
    assert archive.expires is not None
    later = archive.expires + timedelta(seconds=1)
    with pytest.raises(ProvisioningError, match=r"expired at .*provision the device again"):
        identity.provision(archive, tmp_path / "data", now=later)
    assert identity.load(tmp_path / "data") is None
    # A device whose clock is behind still gets the control plane's verdict.
    with pytest.raises(AccessDenied, match="expired: provision the device again"):
        stack.view.exchange_provisioning_credential(archive.token, csr_pem(), now=later)
    # The token was not spent by either attempt.
    assert identity.provision(archive, tmp_path / "data").device_id == archive.info["DeviceId"]


def test_an_unreachable_control_plane_is_retried_until_it_answers(
    stack: Stack, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens here yet
    archive = identity.read_archive(
        _archive(stack, tmp_path, "lobby-4", endpoints=[f"http://127.0.0.1:{port}"])
    )
    said: list[str] = []
    result: list[object] = []
    thread = threading.Thread(
        target=lambda: result.append(identity.provision(archive, tmp_path / "d", say=said.append))
    )
    thread.start()
    deadline = time.monotonic() + 20
    while not any("cannot reach the control plane" in s for s in said):
        assert time.monotonic() < deadline, said
        time.sleep(0.05)
    assert "retrying in" in said[0] and f"127.0.0.1:{port}" in said[0]
    # The control plane comes up at that address.
    relay = PortForwarder(port, int(stack.url.rsplit(":", 1)[1]), bind="127.0.0.1")
    try:
        thread.join(30)
        assert not thread.is_alive()
    finally:
        relay.close()
    assert isinstance(result[0], identity.Identity)
    assert identity.load(tmp_path / "d") is not None


def test_stopping_while_the_control_plane_is_away(stack: Stack, tmp_path: Path) -> None:
    archive = identity.read_archive(
        _archive(stack, tmp_path, "lobby-5", endpoints=[f"http://127.0.0.1:{free_port()}"])
    )
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            identity.provision(archive, tmp_path / "d", stop=stop, say=lambda _m: stop.set())
        except ProvisioningError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert "stopped before the device was provisioned" in str(errors[0])


def test_provisions_from_an_archive_that_appears_in_a_watched_folder(
    stack: Stack, tmp_path: Path
) -> None:
    made = _archive(stack, tmp_path / "made", "lobby-6")
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / "notes.txt").write_text("not an archive")
    found: list[identity.Identity] = []
    thread = threading.Thread(
        target=lambda: found.append(identity.ensure_identity(tmp_path / "d", watch=usb))
    )
    thread.start()
    time.sleep(0.5)
    assert not found  # still waiting for the stick
    shutil.copy(made, usb / made.name)
    thread.join(30)
    assert found and found[0].device_id == identity.read_archive(made).info["DeviceId"]


def test_a_data_dir_of_another_device_is_not_reprovisioned(stack: Stack, tmp_path: Path) -> None:
    first = _archive(stack, tmp_path, "lobby-7")
    other = _archive(stack, tmp_path, "lobby-8")
    identity.ensure_identity(tmp_path / "d", config=first)
    with pytest.raises(ProvisioningError, match=r"already holds device .*use another --data-dir"):
        identity.ensure_identity(tmp_path / "d", config=other)


def test_not_an_archive(tmp_path: Path) -> None:
    bad = tmp_path / "certificates-omni_x.zip"
    bad.write_bytes(b"hello")
    with pytest.raises(ProvisioningError, match="not a Panoptes certificates archive"):
        identity.read_archive(bad)


def test_the_cli_names_a_refused_credential_and_exits_1(stack: Stack, tmp_path: Path) -> None:
    archive = _archive(stack, tmp_path, "lobby-9")
    identity.ensure_identity(tmp_path / "first", config=archive)
    res = subprocess.run(
        [sys.executable, "-m", "panoptes", "agent", "--config", str(archive),
         "--data-dir", str(tmp_path / "second")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1, res.stderr
    assert "error:" in res.stderr and "already used provisioning credential" in res.stderr
    assert "Traceback" not in res.stderr


def test_the_cli_waits_for_the_archive_and_stops_on_sigterm(tmp_path: Path) -> None:
    usb = tmp_path / "usb"
    usb.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-m", "panoptes", "agent", "--watch", str(usb),
         "--data-dir", str(tmp_path / "d")],
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    ready, _, _ = select.select([proc.stderr], [], [], 30)  # what it waits for
    assert ready, "the agent said nothing in 30 s"
    line = proc.stderr.readline()
    assert "waiting for certificates-omni_*.zip in" in line and str(usb) in line
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    assert "Traceback" not in proc.stderr.read()
