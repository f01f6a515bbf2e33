"""`panoptes app package-application` against a real `panoptes serve` process.

The project is made with the `panoptes app` commands (a real TorchScript model, a source
asset for the code, an RTSP camera package); the service is checked with plain boto3
and the AWS CLI, the way a user would look at it afterwards.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from panoptes.cli.app import app_cli
from panoptes.cloud.protocol.models import data_path
from serve_support import BIN, clean_env, running_panoptes

pytestmark = pytest.mark.e2e

ACCOUNT = "123456789012"
AWS = str(BIN / "aws")


# ---- the service ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    data = tmp_path_factory.mktemp("data")
    with running_panoptes(data, tmp_path_factory.mktemp("home")) as url:
        yield data, url


@pytest.fixture(autouse=True)
def _no_aws_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS_* variables and an empty HOME: only the data dir tells where to go."""
    for key in list(os.environ):
        if key.startswith(("AWS_", "PANOPTES_")):
            monkeypatch.delenv(key)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))


class Service:
    """Plain boto3 clients on the server (the Panorama model added to botocore)."""

    def __init__(self, data: Path, url: str) -> None:
        import boto3
        import botocore.session
        from botocore.config import Config

        creds = configparser.ConfigParser()
        creds.read(data / "credentials")
        core = botocore.session.Session()
        core.get_component("data_loader").search_paths.insert(0, str(data_path()))
        session = boto3.Session(
            botocore_session=core,
            aws_access_key_id=creds.get("panoptes", "aws_access_key_id"),
            aws_secret_access_key=creds.get("panoptes", "aws_secret_access_key"),
            region_name="us-east-1",
        )
        # The service throttles per account; back off like any careful client.
        config = Config(
            s3={"addressing_style": "path"}, retries={"mode": "standard", "max_attempts": 10}
        )
        self.panorama = session.client("panorama", endpoint_url=url, config=config)
        self.s3 = session.client("s3", endpoint_url=url, config=config)

    def package(self, name: str) -> dict:
        found = [p for p in self.panorama.list_packages()["Packages"] if p["PackageName"] == name]
        assert len(found) == 1, f"{name}: {found}"
        return self.panorama.describe_package(PackageId=found[0]["PackageId"])

    def latest(self, name: str) -> dict:
        package_id = self.package(name)["PackageId"]
        return self.panorama.describe_package_version(PackageId=package_id, PackageVersion="1.0")

    def has_object(self, bucket: str, key: str) -> bool:
        try:
            self.s3.head_object(Bucket=bucket, Key=key)
            return True
        except self.s3.exceptions.ClientError:
            return False


@pytest.fixture
def service(server: tuple[Path, str]) -> Service:
    return Service(*server)


# ---- the project ---------------------------------------------------------------------


def run(*args: str | Path, code: int = 0):
    result = CliRunner().invoke(app_cli, [str(a) for a in args])
    assert result.exit_code == code, f"{result.stdout}\n{result.stderr}"
    assert "Traceback" not in result.output
    return result


def package_app(root: Path, data: Path, *extra: str | Path, code: int = 0):
    return run("package-application", "--project-dir", root, "--data-dir", data, *extra, code=code)


def build_project(tmp_path: Path, tag: str) -> tuple[Path, dict[str, Path]]:
    """init-project, Container + Model + Camera packages, a real model, a source asset.

    ``tag`` makes the package names unique: every test shares one service account.
    """
    pytest.importorskip("torch")
    import model_nets as nets

    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    root = tmp_path / "app"
    names = {kind: f"{kind}_{tag}" for kind in ("CODE", "MODEL", "CAM")}
    for kind, type_ in (("CODE", "Container"), ("MODEL", "Model"), ("CAM", "Camera")):
        run("create-package", "--name", names[kind], "--type", type_, "--project-dir", root)
    folders = {k: root / "packages" / f"{ACCOUNT}-{n}-1.0" for k, n in names.items()}

    descriptor = folders["MODEL"] / "descriptor.json"
    descriptor.write_text(
        json.dumps(
            {
                "mlModelDescriptor": {
                    "envelopeVersion": "2021-01-01",
                    "framework": "PYTORCH",
                    "inputs": [{"name": "data", "shape": [1, 3, 32, 32]}],
                }
            },
            indent=4,
        )
    )
    archive = nets.tiny_torchscript_archive(tmp_path / "model.tar.gz", shape=(1, 3, 32, 32))
    run(
        "add-raw-model", "--model-asset-name", "model_asset", "--model-local-path", archive,
        "--descriptor-path", descriptor, "--packages-path", folders["MODEL"],
        "--project-dir", root,
    )  # fmt: skip

    code = folders["CODE"]
    (code / "requirements.txt").write_text("")
    desc = code / "descriptor.json"
    desc.write_text(desc.read_text().replace("<entry_file_name_under_src>", "app.py"))
    rebuild_code(root, code, "print('panoptes v1')\n")
    return root, folders


def rebuild_code(root: Path, code: Path, source: str) -> None:
    (code / "src" / "app.py").write_text(source)
    run(
        "build-container", "--container-asset-name", "code_asset", "--package-path", code,
        "--engine", "none", "--no-wheelhouse", "--project-dir", root,
    )  # fmt: skip


def patch_of(folder: Path) -> str:
    return hashlib.sha256((folder / "package.json").read_bytes()).hexdigest()


def asset_files(folder: Path) -> list[str]:
    doc = json.loads((folder / "package.json").read_text())
    return [
        uri
        for asset in doc["nodePackage"]["assets"]
        for impl in asset["implementations"]
        if impl["type"] != "system"
        for uri in (impl.get("assetUri"), impl.get("descriptorUri"))
        if uri
    ]


def code_asset(folder: Path) -> str:
    doc = json.loads((folder / "package.json").read_text())
    return next(a for a in doc["nodePackage"]["assets"] if a["name"] == "code_asset")[
        "implementations"
    ][0]["assetUri"]


# ---- tests ---------------------------------------------------------------------------


def test_registers_every_package_then_skips_then_replaces_a_changed_one(
    server: tuple[Path, str], service: Service, tmp_path: Path
) -> None:
    data, _url = server
    root, folders = build_project(tmp_path, "A")

    out = package_app(root, data).stdout
    for kind, folder in folders.items():
        name = f"{kind}_A"
        patch = patch_of(folder)
        assert f"Uploading package {name}" in out
        assert f"Called register package version for {name} with patch version {patch}" in out
        latest = service.latest(name)
        assert latest["Status"] == "REGISTER_COMPLETED"
        assert latest["PatchVersion"] == patch and latest["IsLatestPatch"]
        location = service.package(name)["StorageLocation"]
        for uri in asset_files(folder):
            assert f"upload: assets/{uri} to s3://{location['Bucket']}/" in out
            key = f"{location['BinaryPrefixLocation']}/{uri}"
            assert service.has_object(location["Bucket"], key)
        manifest = f"{location['ManifestPrefixLocation']}/1.0/{patch}.json"
        body = service.s3.get_object(Bucket=location["Bucket"], Key=manifest)["Body"].read()
        assert body == (folder / "package.json").read_bytes()
    assert asset_files(folders["CAM"]) == []  # only a system asset: nothing uploaded
    assert out.rstrip().endswith("All packages uploaded and registered successfully")

    nodes = service.panorama.list_nodes()["Nodes"]
    by_package = {n["PackageName"]: n for n in nodes}
    assert {"CODE_A", "MODEL_A", "CAM_A"} <= set(by_package)
    assert by_package["CAM_A"]["Category"] == "MEDIA_SOURCE"
    assert by_package["MODEL_A"]["PatchVersion"] == patch_of(folders["MODEL"])

    # Again, unchanged: every package skipped, nothing uploaded, nothing registered.
    before = {k: service.latest(f"{k}_A") for k in folders}
    again = package_app(root, data).stdout
    for folder in folders.values():
        assert f"Patch Version {patch_of(folder)} already registered, ignoring upload" in again
    assert "upload:" not in again and "Called register" not in again
    for kind in folders:
        now = service.latest(f"{kind}_A")
        assert now["PatchVersion"] == before[kind]["PatchVersion"]
        assert now["RegisteredTime"] == before[kind]["RegisteredTime"]

    # The code changes: a new asset, a new package.json, a new patch; the old one goes.
    old_patch, old_asset = patch_of(folders["CODE"]), code_asset(folders["CODE"])
    rebuild_code(root, folders["CODE"], "print('panoptes v2')\n")
    new_patch, new_asset = patch_of(folders["CODE"]), code_asset(folders["CODE"])
    assert new_patch != old_patch and new_asset != old_asset
    third = package_app(root, data).stdout
    assert f"Patch version for the package {new_patch}" in third
    assert f"upload: assets/{new_asset}" in third
    descriptor_uri = next(u for u in asset_files(folders["CODE"]) if u.endswith(".json"))
    assert f"Asset {descriptor_uri} already exists, ignoring upload" in third
    assert f"Deregistering previous patch version {old_patch} for CODE_A" in third
    latest = service.latest("CODE_A")
    assert latest["PatchVersion"] == new_patch and latest["Status"] == "REGISTER_COMPLETED"
    package_id = latest["PackageId"]
    with pytest.raises(service.panorama.exceptions.ResourceNotFoundException):
        service.panorama.describe_package_version(
            PackageId=package_id, PackageVersion="1.0", PatchVersion=old_patch
        )
    code_nodes = service.panorama.list_nodes(PackageName="CODE_A")["Nodes"]
    assert {n["PatchVersion"] for n in code_nodes} == {new_patch}
    # The other packages were left alone.
    assert f"Patch Version {patch_of(folders['MODEL'])} already registered" in third


def test_the_same_flow_by_hand_with_the_aws_cli(
    server: tuple[Path, str], service: Service, tmp_path: Path
) -> None:
    data, url = server
    root, folders = build_project(tmp_path, "H")
    env = clean_env(tmp_path / "home") | {
        "AWS_DATA_PATH": str(data_path()),
        "AWS_SHARED_CREDENTIALS_FILE": str(data / "credentials"),
        "AWS_PROFILE": "panoptes",
        "AWS_DEFAULT_REGION": "us-east-1",
    }

    def aws(*args: str) -> str:
        res = subprocess.run(
            [AWS, *args, "--endpoint-url", url, "--output", "json"],
            capture_output=True,
            text=True,
            env=env,
            cwd=root,
            timeout=120,
        )
        assert res.returncode == 0, f"aws {' '.join(args)}\n{res.stdout}\n{res.stderr}"
        return res.stdout

    for kind, folder in folders.items():
        name = f"{kind}_H"
        created = json.loads(aws("panorama", "create-package", "--package-name", name))
        loc = created["StorageLocation"]
        bucket = loc["Bucket"]
        for uri in asset_files(folder):
            aws("s3", "cp", f"assets/{uri}", f"s3://{bucket}/{loc['BinaryPrefixLocation']}/{uri}")
        patch = patch_of(folder)
        manifest = f"s3://{bucket}/{loc['ManifestPrefixLocation']}/1.0/{patch}.json"
        aws("s3", "cp", str(folder / "package.json"), manifest)
        aws(
            "panorama", "register-package-version", "--package-id", created["PackageId"],
            "--package-version", "1.0", "--patch-version", patch, "--mark-latest",
        )  # fmt: skip
        described = aws(
            "panorama", "describe-package-version", "--package-id", created["PackageId"],
            "--package-version", "1.0", "--patch-version", patch,
        )  # fmt: skip
        described = json.loads(described)
        assert described["Status"] == "REGISTER_COMPLETED" and described["IsLatestPatch"]

    # package-application finds what the hand flow registered and has nothing to do.
    out = package_app(root, data).stdout
    for folder in folders.values():
        assert f"Patch Version {patch_of(folder)} already registered, ignoring upload" in out
    assert "Created package" not in out and "upload:" not in out


def test_a_tampered_asset_is_named_and_the_previous_patch_stays_latest(
    server: tuple[Path, str], service: Service, tmp_path: Path
) -> None:
    data, _url = server
    root, folders = build_project(tmp_path, "T")
    package_app(root, data)
    good_patch = patch_of(folders["CODE"])

    rebuild_code(root, folders["CODE"], "print('panoptes v2')\n")
    asset = root / "assets" / code_asset(folders["CODE"])
    pristine = tmp_path / "pristine"
    shutil.copy2(asset, pristine)
    with asset.open("ab") as f:
        f.write(b"tampered")  # the name still says the old SHA-256

    res = package_app(root, data, code=1)
    assert f"error: registering CODE_T 1.0 patch {patch_of(folders['CODE'])}" in res.stderr
    assert f"asset {asset.name} was altered" in res.stderr
    assert "fix:" in res.stderr and f"assets/{asset.name}" in res.stderr
    latest = service.latest("CODE_T")
    assert latest["PatchVersion"] == good_patch and latest["IsLatestPatch"]

    # Repaired, the next run uploads it again (the refused copy was removed) and succeeds.
    shutil.copy2(pristine, asset)
    out = package_app(root, data).stdout
    assert f"upload: assets/{asset.name}" in out
    assert f"Deregistering previous patch version {good_patch} for CODE_T" in out
    assert service.latest("CODE_T")["PatchVersion"] == patch_of(folders["CODE"])


def test_a_missing_asset_file_stops_before_any_upload(
    server: tuple[Path, str], service: Service, tmp_path: Path
) -> None:
    data, _url = server
    root, folders = build_project(tmp_path, "M")
    missing = asset_files(folders["MODEL"])[0]
    (root / "assets" / missing).unlink()
    res = package_app(root, data, code=1)
    assert f"names asset {missing}, but assets/{missing} does not exist" in res.stderr
    assert "fix:" in res.stderr and "add-raw-model" in res.stderr
    assert "Uploading package" not in res.stdout
    names = {p["PackageName"] for p in service.panorama.list_packages()["Packages"]}
    assert not names & {"CODE_M", "MODEL_M", "CAM_M"}


def test_no_running_service_says_how_to_start_one(tmp_path: Path) -> None:
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    res = package_app(tmp_path / "app", tmp_path / "nothing", code=1)
    assert "error:" in res.stderr and "panoptes serve --data-dir" in res.stderr


def test_data_dir_and_endpoint_url_exclude_each_other(tmp_path: Path) -> None:
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    res = package_app(tmp_path / "app", tmp_path, "--endpoint-url", "http://x", code=1)
    assert "give one of them" in res.stderr


def test_endpoint_url_uses_standard_credentials(
    server: tuple[Path, str], service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--endpoint-url + AWS_SHARED_CREDENTIALS_FILE/--profile: no data dir involved."""
    data, url = server
    run("init-project", "--name", "app", "--parent-dir", tmp_path)
    root = tmp_path / "app"
    run("create-package", "--name", "CAM_E", "--type", "Camera", "--project-dir", root)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(data / "credentials"))
    out = run(
        "package-application", "--project-dir", root, "--endpoint-url", url,
        "--profile", "panoptes", "--region", "us-east-1",
    ).stdout  # fmt: skip
    assert "All packages uploaded and registered successfully" in out
    assert service.latest("CAM_E")["Status"] == "REGISTER_COMPLETED"
