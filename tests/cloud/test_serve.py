"""`panoptes serve` + `panoptes env` as a user runs them: unchanged aws CLI and boto3.

One real server process per module (SQLite, filesystem store, first-start admin key);
the clients are the newest AWS CLI and boto3, which no longer know Panorama until
`panoptes env` points them at the model Panoptes ships.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from serve_support import BIN, clean_env, running_panoptes

pytestmark = pytest.mark.e2e

AWS = str(BIN / "aws")
PANOPTES = [sys.executable, "-m", "panoptes"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    data = tmp_path_factory.mktemp("data")
    with running_panoptes(
        data, tmp_path_factory.mktemp("home"), log=data.parent / "serve.log"
    ) as url:
        yield data, url


def _exchange(url: str, token: str) -> str:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "appliance")]))
        .sign(key, hashes.SHA256())
    )
    body = json.dumps(
        {"token": token, "csr": csr.public_bytes(serialization.Encoding.PEM).decode()}
    ).encode()
    request = urllib.request.Request(
        url + "/provisioning/exchange", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["certificate"]


def sh(script: str, home: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=clean_env(home), timeout=120
    )
    if check:
        assert res.returncode == 0, f"{script}\n{res.stdout}\n{res.stderr}"
    return res


def test_first_start_wrote_credentials_and_told_how_to_use_them(server, tmp_path) -> None:
    data, _url = server
    creds = (data / "credentials").read_text()
    assert "[panoptes]" in creds and "aws_secret_access_key" in creds
    assert oct((data / "credentials").stat().st_mode & 0o777) == "0o600"
    log = (data.parent / "serve.log").read_text()
    assert f'eval "$(panoptes env --data-dir {data})"' in log
    secret = creds.split("aws_secret_access_key")[1].split("=")[1].split()[0]
    assert secret not in log  # the secret is never printed


def test_without_setup_the_aws_cli_does_not_know_panorama(server, tmp_path) -> None:
    _data, url = server
    res = sh(
        f"{AWS} panorama list-devices --endpoint-url {url} --region us-east-1",
        tmp_path,
        check=False,
    )
    assert res.returncode != 0
    assert "Invalid choice" in res.stderr or "panorama" in res.stderr


def test_after_eval_env_unchanged_cli_and_boto3_reach_panoptes(server, tmp_path) -> None:
    data, _url = server
    setup = f'eval "$(panoptes env --data-dir {data})"'
    res = sh(f"{setup} && {AWS} panorama list-devices", tmp_path)
    assert json.loads(res.stdout)["Devices"] == []

    script = "import boto3; print(boto3.client('panorama').list_devices()['Devices'])"
    res = sh(f'{setup} && {sys.executable} -c "{script}"', tmp_path)
    assert res.stdout.strip() == "[]"

    # Package storage is an S3 bucket on the same endpoint: `aws s3` sees it.
    created = sh(f"{setup} && {AWS} panorama create-package --package-name SAMPLE_CODE", tmp_path)
    bucket = json.loads(created.stdout)["StorageLocation"]["Bucket"]
    listed = sh(f"{setup} && {AWS} s3 ls", tmp_path)
    assert bucket in listed.stdout.split()
    assert ".multipart" not in listed.stdout

    undo = sh(f'{setup} && eval "$(panoptes env --unset)" && env | grep ^AWS_ || true', tmp_path)
    assert undo.stdout.strip() == ""


def test_the_specs_shell_flows_run_with_only_the_endpoint_added(server, tmp_path) -> None:
    data, url = server
    # The guide's scripts call `aws panorama ...`; with the model on AWS_DATA_PATH and
    # --endpoint-url, nothing else in them changes.
    from panoptes.cloud.protocol.models import data_path

    creds = data / "credentials"
    base = (
        f"export AWS_DATA_PATH={data_path()} AWS_SHARED_CREDENTIALS_FILE={creds} "
        f"AWS_PROFILE=panoptes AWS_DEFAULT_REGION=us-east-1; "
        f"P='{AWS} panorama --endpoint-url {url}'; "
    )
    out = sh(base + "$P provision-device --name my-appliance --output json", tmp_path)
    device = json.loads(out.stdout)
    assert device["Status"] and device["DeviceId"].startswith("device-")
    import base64
    import io
    import zipfile

    archive = zipfile.ZipFile(io.BytesIO(base64.b64decode(device["Certificates"])))
    provisioning = json.loads(archive.read("provisioning.json"))
    assert provisioning["DeviceId"] == device["DeviceId"]
    assert provisioning["Endpoints"] == [url]

    # A job for a device that never came up is refused with the reason.
    early = sh(
        base + f"$P create-job-for-devices --device-ids {device['DeviceId']} --job-type REBOOT",
        tmp_path,
        check=False,
    )
    assert early.returncode != 0 and "AWAITING_PROVISIONING" in early.stderr

    # The device side of provisioning: its own key, a CSR, the one-time token.
    cert = _exchange(url, provisioning["ProvisioningCredential"]["Token"])
    assert "BEGIN CERTIFICATE" in cert
    with pytest.raises(urllib.error.HTTPError) as replay:  # the token is good once
        _exchange(url, provisioning["ProvisioningCredential"]["Token"])
    assert replay.value.code == 403

    camera = sh(
        base + "$P create-node-from-template-job --template-type RTSP_CAMERA_STREAM "
        "--output-package-name exterior-south --output-package-version 1.0 "
        "--node-name exterior-south --node-description 'Camera' "
        '--template-parameters \'{"Username":"admin","Password":"s3cret",'
        '"StreamUrl":"rtsp://10.0.0.9:554/live"}\'',
        tmp_path,
    )
    job = json.loads(camera.stdout)["JobId"]
    described = sh(base + f"$P describe-node-from-template-job --job-id {job}", tmp_path)
    assert "s3cret" not in described.stdout

    listed = sh(base + "$P list-devices --query 'Devices[].Name' --output text", tmp_path)
    assert "my-appliance" in listed.stdout
    described = json.loads(
        sh(base + f"$P describe-device --device-id {device['DeviceId']}", tmp_path).stdout
    )
    # Certificate issued; the device turns SUCCEEDED when its agent first reports in
    # (the device issue), and only then takes jobs.
    assert described["ProvisioningStatus"] == "PENDING"
    apps = sh(
        base + "$P list-application-instances --query 'ApplicationInstances[].Name'", tmp_path
    )
    assert json.loads(apps.stdout) == []


def test_install_then_uninstall_leaves_other_profiles_byte_for_byte(server, tmp_path) -> None:
    data, _url = server
    aws_dir = tmp_path / ".aws"
    aws_dir.mkdir()
    config = "# my settings\n[default]\nregion = eu-west-1\n\n[profile work]\noutput = json"
    creds = "[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = x\n"
    (aws_dir / "config").write_text(config)  # no final newline, on purpose
    (aws_dir / "credentials").write_text(creds)

    sh(f"panoptes env --install --data-dir {data}", tmp_path)
    after_one = {p.name: p.read_bytes() for p in aws_dir.rglob("*") if p.is_file()}
    sh(f"panoptes env --install --data-dir {data}", tmp_path)
    after_two = {p.name: p.read_bytes() for p in aws_dir.rglob("*") if p.is_file()}
    assert after_one == after_two  # twice = once
    assert (aws_dir / "config").read_text().startswith(config)

    res = sh(f"{AWS} --profile panoptes panorama list-devices", tmp_path)
    assert json.loads(res.stdout)["Devices"]

    sh("panoptes env --uninstall", tmp_path)
    assert (aws_dir / "config").read_text() == config
    assert (aws_dir / "credentials").read_text() == creds
    assert not (aws_dir / "models" / "panorama").exists()


def test_env_without_a_running_service_says_how_to_start_one(tmp_path) -> None:
    res = sh(f"panoptes env --data-dir {tmp_path / 'nothing'}", tmp_path, check=False)
    assert res.returncode == 1
    assert "panoptes serve --data-dir" in res.stderr
