"""The app over real HTTP (uvicorn on 127.0.0.1) with unchanged boto3 and the AWS CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import botocore.auth
import botocore.session
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials

sys.path.insert(0, str(Path(__file__).parent / "protocol"))
from protocol_server import ADMIN, CREDENTIALS, DISABLED, CannedPanorama, serve

from panoptes.cloud.app import NO_LIMITS, Limits, create_app
from panoptes.cloud.errors import Conflict
from panoptes.cloud.protocol.models import data_path
from panoptes.cloud.storage.filesystem import FilesystemStore

pytestmark = pytest.mark.e2e


def session() -> boto3.Session:
    """A boto3 session that knows Panorama from our package data (no env change)."""
    core = botocore.session.get_session()
    core.get_component("data_loader").search_paths.insert(0, str(data_path()))
    return boto3.Session(botocore_session=core)


def panorama(url: str, secret: str = ADMIN.secret_access_key, key=ADMIN.access_key_id, **cfg):
    return session().client(
        "panorama",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(**cfg) if cfg else None,
    )


def s3(url: str, **cfg):
    return session().client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id=ADMIN.access_key_id,
        aws_secret_access_key=ADMIN.secret_access_key,
        config=Config(s3={"addressing_style": "path"}, **cfg),
    )


@pytest.fixture(scope="module")
def backend():
    return CannedPanorama()


@pytest.fixture(scope="module")
def url(backend, tmp_path_factory):
    store = FilesystemStore(tmp_path_factory.mktemp("objects"))
    app = create_app({"panorama": backend}, CREDENTIALS, store, limits=NO_LIMITS)
    with serve(app) as base:
        yield base


def test_every_call_reaches_the_backend_with_who_and_where(url, backend):
    client = panorama(url)
    devices = client.list_devices(MaxResults=5)["Devices"]
    assert devices and devices[0]["DeviceId"]
    operation, ctx, params = backend.calls[-1]
    assert (operation, params) == ("ListDevices", {"MaxResults": 5})
    assert (ctx.account_id, ctx.region, ctx.principal) == ("123456789012", "us-east-1", "admin")


def test_bad_enum_and_missing_field_are_modeled_validation_errors(url):
    client = panorama(url)
    with pytest.raises(client.exceptions.ValidationException) as caught:
        client.list_devices(SortBy="COLOR")
    assert "SortBy" in caught.value.response["Error"]["Message"]
    assert caught.value.response["Fields"][0]["Name"] == "SortBy"
    # botocore validates client-side too; switch that off to reach the server.
    lax = panorama(url, parameter_validation=False)
    with pytest.raises(lax.exceptions.ValidationException) as caught:
        lax.create_package()
    assert caught.value.response["Fields"] == [
        {"Name": "PackageName", "Message": "Missing required field PackageName: it must be given"}
    ]


def test_service_errors_arrive_as_modeled_exceptions(url, backend):
    client = panorama(url)
    backend.next_error = Conflict("device is busy", resource_id="dev-1", resource_type="device")
    with pytest.raises(client.exceptions.ConflictException) as caught:
        client.delete_device(DeviceId="dev-1")
    assert caught.value.response["ResourceId"] == "dev-1"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 409


def test_a_crash_is_an_internal_error_without_a_traceback(url, backend):
    client = panorama(url, retries={"mode": "standard", "total_max_attempts": 1})
    backend.next_error = RuntimeError("secret internal detail")
    with pytest.raises(client.exceptions.InternalServerException) as caught:
        client.describe_device(DeviceId="dev-1")
    message = caught.value.response["Error"]["Message"]
    assert "request id" in message and "secret" not in message


def test_wrong_secret_unknown_and_disabled_keys_are_refused(url):
    for client in (
        panorama(url, secret="wrong"),
        panorama(url, key="AKIDNOBODY"),
        panorama(url, key=DISABLED.access_key_id, secret=DISABLED.secret_access_key),
    ):
        with pytest.raises(client.exceptions.ClientError) as caught:
            client.list_devices()
        assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        assert caught.value.response["Error"]["Code"] in (
            "InvalidSignatureException",
            "UnrecognizedClientException",
        )


def test_unsigned_requests_are_refused_and_healthz_is_open(url):
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"{url}/devices")
    assert caught.value.code == 403
    assert urllib.request.urlopen(f"{url}/healthz").read() == b"ok"


@contextmanager
def client_clock(moment: datetime):
    """botocore signs with this time (the client's clock is wrong, not the server's)."""
    real = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda: moment.replace(tzinfo=None)
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = real


def test_replay_outside_the_skew_window_is_refused(url):
    request = AWSRequest(method="GET", url=f"{url}/devices")
    signer = SigV4Auth(
        Credentials(ADMIN.access_key_id, ADMIN.secret_access_key), "panorama", "us-east-1"
    )
    with client_clock(datetime.now(UTC) - timedelta(minutes=20)):
        signer.add_auth(request)
    prepared = request.prepare()
    replay = urllib.request.Request(prepared.url, headers=dict(prepared.headers.items()))
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(replay)
    assert caught.value.code == 403
    assert caught.value.headers["x-amzn-ErrorType"] == "InvalidSignatureException"
    assert b"Signature expired" in caught.value.read()


def test_s3_basics_presign_and_list_pagination(url):
    client = s3(url)
    client.create_bucket(Bucket="assets")
    keys = [f"pkg/{i:02d}/file ü+{i}.bin" for i in range(7)] + ["pkg", "top.txt"]
    for key in keys:
        client.put_object(Bucket="assets", Key=key, Body=key.encode())
    assert client.get_object(Bucket="assets", Key=keys[3])["Body"].read() == keys[3].encode()
    ranged = client.get_object(Bucket="assets", Key="top.txt", Range="bytes=1-3")
    assert ranged["Body"].read() == b"op."
    with pytest.raises(client.exceptions.NoSuchKey):
        client.get_object(Bucket="assets", Key="missing")

    pages = client.get_paginator("list_objects_v2").paginate(
        Bucket="assets", Prefix="pkg/", PaginationConfig={"PageSize": 3}
    )
    listed = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert listed == sorted(k for k in keys if k.startswith("pkg/"))
    folders = client.list_objects_v2(Bucket="assets", Delimiter="/")
    assert [p["Prefix"] for p in folders["CommonPrefixes"]] == ["pkg/"]
    assert [o["Key"] for o in folders["Contents"]] == ["pkg", "top.txt"]
    after = client.list_objects_v2(Bucket="assets", StartAfter="pkg/05")
    assert after["Contents"][0]["Key"].startswith("pkg/05/")

    for version in ("s3", "s3v4"):
        signer = s3(url, signature_version=version)
        link = signer.generate_presigned_url(
            "get_object", Params={"Bucket": "assets", "Key": keys[0]}, ExpiresIn=60
        )
        assert urllib.request.urlopen(link).read() == keys[0].encode()
    with client_clock(datetime.now(UTC) - timedelta(minutes=2)):
        expired = s3(url, signature_version="s3v4").generate_presigned_url(
            "get_object", Params={"Bucket": "assets", "Key": keys[0]}, ExpiresIn=60
        )
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(expired)
    assert caught.value.code == 403
    assert b"<Code>AccessDenied</Code><Message>Request has expired</Message>" in caught.value.read()


@pytest.mark.slow
def test_aws_cli_copies_20_mb_both_ways_byte_identical(url, tmp_path):
    s3(url).create_bucket(Bucket="bigfiles")
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    env = dict(
        os.environ,
        AWS_ACCESS_KEY_ID=ADMIN.access_key_id,
        AWS_SECRET_ACCESS_KEY=ADMIN.secret_access_key,
        AWS_DEFAULT_REGION="us-east-1",
        AWS_DATA_PATH=str(data_path()),
    )
    aws = [str(Path(sys.executable).parent / "aws"), "--endpoint-url", url]
    for args in (
        ["s3", "cp", str(source), "s3://bigfiles/dir/big.bin"],
        ["s3", "cp", "s3://bigfiles/dir/big.bin", str(tmp_path / "back.bin")],
    ):
        done = subprocess.run(aws + args, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
    assert (tmp_path / "back.bin").read_bytes() == source.read_bytes()
    # The CLI knows Panorama through AWS_DATA_PATH too.
    done = subprocess.run(
        [*aws, "panorama", "list-devices"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "Devices" in done.stdout


def test_rate_limit_answers_a_throttle_botocore_retries(tmp_path):
    ticks = [0.0]
    app = create_app(
        {"panorama": CannedPanorama()},
        CREDENTIALS,
        FilesystemStore(tmp_path),
        limits=Limits(requests_per_second=5, mutating_per_second=1),
        clock=lambda: ticks[0],
    )
    with serve(app) as base:
        client = panorama(base, retries={"mode": "standard", "total_max_attempts": 1})
        for _ in range(5):
            client.list_devices()
        with pytest.raises(client.exceptions.ClientError) as caught:
            client.list_devices()
        error = caught.value.response
        assert error["Error"]["Code"] == "ThrottlingException"
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 429
        assert int(error["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1
        ticks[0] += 1.0
        client.create_package(PackageName="one")
        with pytest.raises(client.exceptions.ClientError):
            client.create_package(PackageName="two")  # one write per second
        ticks[0] += 1.0
        client.create_package(PackageName="two")
