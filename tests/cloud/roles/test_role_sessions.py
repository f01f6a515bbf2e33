"""Role sessions against the served stack, with unchanged boto3 clients.

An instance deployed with a RuntimeRoleArn gets short-lived credentials
(issue_role_credentials, what the device endpoint serves); requests signed with them
are allowed exactly what the role's policy allows, refused with each protocol's
AccessDenied otherwise, and refused outright when the token is missing, wrong or
expired. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import io
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any

import botocore.exceptions
import pytest
from api_helpers import Stack, publish_sample_app, running_stack
from boto3.s3.transfer import TransferConfig
from roles_support import (
    TRUST,
    create_role,
    credentials_for,
    deploy,
    iam,
    iam_client,
    new_device,
    put_policy,
    session_client,
    stack_client,
    statement,
)

from panoptes.cloud.errors import ResourceNotFound
from panoptes.cloud.services.roles import NoRole, device_credentials_response
from pg_support import pg_available

BUCKET = "app-media"


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not pg_available(), reason="no PostgreSQL on :5432"),
        ),
    ],
)
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    kind = request.param
    with running_stack(kind, tmp_path_factory.mktemp(f"{kind}-roles")) as served:
        publish_sample_app(served)
        served.s3().create_bucket(Bucket=BUCKET)
        yield served


@pytest.fixture(scope="module")
def app(stack: Stack) -> dict[str, Any]:
    """An instance whose role allows panorama:ListDevices and uploads under uploads/."""
    create_role(
        stack,
        "panorama-sample-runtime",
        statement("panorama:ListDevices"),
        statement("s3:PutObject", f"arn:aws:s3:::{BUCKET}/uploads/*"),
    )
    device = new_device(stack, "roles-appliance")
    instance = deploy(stack, device, "panorama-sample-runtime")
    return {
        "device": device,
        "instance": instance,
        "creds": credentials_for(stack, device, instance),
    }


def error_of(call, **params: Any) -> dict[str, str]:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call(**params)
    return caught.value.response["Error"]


def test_credentials_look_like_aws_session_credentials(app: dict) -> None:
    creds = app["creds"]
    assert creds["AccessKeyId"].startswith("ASIA") and len(creds["AccessKeyId"]) == 20
    assert len(creds["SecretAccessKey"]) == 40 and creds["Token"]
    expires = datetime.fromisoformat(creds["Expiration"].replace("Z", "+00:00"))
    assert timedelta(minutes=55) < expires - datetime.now(UTC) <= timedelta(hours=1)


def test_the_role_allows_what_its_policy_says_and_nothing_else(stack: Stack, app: dict) -> None:
    panorama = session_client(stack, "panorama", app["creds"])
    devices = panorama.list_devices()["Devices"]
    assert app["device"] in {d["DeviceId"] for d in devices}

    error = error_of(panorama.list_packages)
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"].startswith(
        f"User: arn:aws:sts::{stack.account}:assumed-role/panorama-sample-runtime/"
        f"{app['instance']} is not authorized to perform: panorama:ListPackages on resource: *"
    )

    s3 = session_client(stack, "s3", app["creds"])
    s3.put_object(Bucket=BUCKET, Key="uploads/cam1/0001.jpg", Body=b"jpeg bytes")
    landed = stack.s3().get_object(Bucket=BUCKET, Key="uploads/cam1/0001.jpg")
    assert landed["Body"].read() == b"jpeg bytes"

    error = error_of(s3.put_object, Bucket=BUCKET, Key="elsewhere/0001.jpg", Body=b"x")
    assert error["Code"] == "AccessDenied"
    assert (
        f"is not authorized to perform: s3:PutObject on resource: "
        f"arn:aws:s3:::{BUCKET}/elsewhere/0001.jpg" in error["Message"]
    )
    assert stack.s3().list_objects_v2(Bucket=BUCKET, Prefix="elsewhere/")["KeyCount"] == 0
    # IAM answers a refused call in its own words.
    error = error_of(session_client(stack, "iam", app["creds"]).list_roles)
    assert error["Code"] == "AccessDenied" and "iam:ListRoles on resource: *" in error["Message"]
    # Reading back what it wrote is another action, not granted.
    assert error_of(s3.get_object, Bucket=BUCKET, Key="uploads/cam1/0001.jpg")["Code"] == (
        "AccessDenied"
    )


def test_multipart_uploads_inside_the_prefix_are_put_object(stack: Stack, app: dict) -> None:
    s3 = session_client(stack, "s3", app["creds"])
    body = b"0123456789" * (600 * 1024)  # 6 MB: two parts at a 5 MB threshold
    config = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
    s3.upload_fileobj(io.BytesIO(body), BUCKET, "uploads/clip.mp4", Config=config)
    assert stack.s3().head_object(Bucket=BUCKET, Key="uploads/clip.mp4")["ContentLength"] == len(
        body
    )


def test_policy_changes_apply_to_the_next_request(stack: Stack, app: dict) -> None:
    panorama = session_client(stack, "panorama", app["creds"])
    assert error_of(panorama.list_nodes)["Code"] == "AccessDeniedException"
    put_policy(stack, "panorama-sample-runtime", "nodes", statement("panorama:ListNodes"))
    panorama.list_nodes()
    put_policy(
        stack,
        "panorama-sample-runtime",
        "nodes",
        statement("panorama:ListNodes"),
        statement("panorama:*", effect="Deny"),
    )
    assert error_of(panorama.list_nodes)["Message"].endswith(
        "with an explicit deny in an identity-based policy"
    )
    iam(stack, "DeleteRolePolicy", RoleName="panorama-sample-runtime", PolicyName="nodes")
    panorama.list_devices()


def test_the_session_token_must_come_with_the_key(stack: Stack, app: dict) -> None:
    creds = app["creds"]
    for token in (None, creds["Token"][:-4] + "AAAA"):
        panorama = session_client(stack, "panorama", creds, token=token)
        error = error_of(panorama.list_devices)
        assert error["Code"] == "UnrecognizedClientException"
        assert "security token" in error["Message"]
        s3 = session_client(stack, "s3", creds, token=token)
        error = error_of(s3.put_object, Bucket=BUCKET, Key="uploads/x", Body=b"x")
        assert error["Code"] == "InvalidToken"


@pytest.mark.parametrize("signature", ["s3v4", "s3"])
def test_presigned_urls_carry_the_session_and_its_policy(
    stack: Stack, app: dict, signature: str
) -> None:
    s3 = session_client(stack, "s3", app["creds"], signature_version=signature)

    def put(key: str, tamper: bool = False) -> tuple[int, bytes]:
        url = s3.generate_presigned_url("put_object", Params={"Bucket": BUCKET, "Key": key})
        assert "security-token=" in url.lower()  # the token travels in the URL
        if tamper:
            url = re.sub("(?i)(security-token=)", r"\1x", url)
        request = urllib.request.Request(url, data=b"via url", method="PUT")
        request.add_header("Content-Type", "")  # as signed (urllib would add its own)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    assert put("uploads/presigned.bin")[0] == 200
    status, body = put("other/presigned.bin")
    assert status == 403 and b"<Code>AccessDenied</Code>" in body
    status, body = put("uploads/presigned.bin", tamper=True)
    assert b"<Code>InvalidToken</Code>" in body


def test_expired_credentials_are_refused(stack: Stack, app: dict) -> None:
    old = credentials_for(
        stack, app["device"], app["instance"], now=datetime.now(UTC) - timedelta(hours=2)
    )
    error = error_of(session_client(stack, "panorama", old).list_devices)
    assert error["Code"] == "ExpiredTokenException"
    assert "expired" in error["Message"]
    s3 = session_client(stack, "s3", old)
    error = error_of(s3.put_object, Bucket=BUCKET, Key="uploads/late.jpg", Body=b"x")
    assert error["Code"] == "ExpiredToken"
    # The query protocol (IAM) names it as IAM does.
    assert error_of(session_client(stack, "iam", old).list_roles)["Code"] == "ExpiredToken"
    # Fresh credentials of the same instance work; the expired ones stay refused.
    fresh = credentials_for(stack, app["device"], app["instance"])
    session_client(stack, "panorama", fresh).list_devices()
    assert error_of(session_client(stack, "panorama", old).list_devices)["Code"] == (
        "ExpiredTokenException"
    )
    # A day later they are gone altogether.
    credentials_for(
        stack, app["device"], app["instance"], now=datetime.now(UTC) + timedelta(days=1)
    )
    error = error_of(session_client(stack, "panorama", old).list_devices)
    assert error["Code"] == "UnrecognizedClientException"
    session_client(stack, "panorama", fresh).list_devices()  # still in its hour


def test_an_instance_without_a_usable_role_gets_no_credentials(stack: Stack, app: dict) -> None:
    bare = deploy(stack, app["device"], None)
    with pytest.raises(NoRole, match="without a RuntimeRoleArn"):
        credentials_for(stack, app["device"], bare)
    ghost = deploy(stack, app["device"], "no-such-role")
    with pytest.raises(NoRole, match=r"no-such-role.*does not exist"):
        credentials_for(stack, app["device"], ghost)
    # Only the device the instance runs on may ask for its credentials.
    other = new_device(stack, "another-appliance")
    with pytest.raises(ResourceNotFound):
        credentials_for(stack, other, app["instance"])
    # What the device endpoint answers: 404 for both, 200 with the credentials.
    env, now = stack.server.backend.env, datetime.now(UTC)
    status, body = device_credentials_response(env, app["device"], bare, now)
    assert (status, body["code"]) == (404, "NoRole")
    assert device_credentials_response(env, other, app["instance"], now)[0] == 404
    status, body = device_credentials_response(env, app["device"], app["instance"], now)
    assert status == 200 and body["AccessKeyId"].startswith("ASIA")


def test_deleting_the_role_ends_its_sessions(stack: Stack, app: dict) -> None:
    create_role(stack, "short-lived", statement("panorama:ListDevices"))
    instance = deploy(stack, app["device"], "short-lived")
    creds = credentials_for(stack, app["device"], instance)
    panorama = session_client(stack, "panorama", creds)
    panorama.list_devices()
    iam(stack, "DeleteRolePolicy", RoleName="short-lived", PolicyName="app")
    assert error_of(panorama.list_devices)["Code"] == "AccessDeniedException"
    iam(stack, "DeleteRole", RoleName="short-lived")
    assert error_of(panorama.list_devices)["Code"] == "UnrecognizedClientException"


def test_a_metrics_only_role_puts_metrics_and_nothing_else(stack: Stack, app: dict) -> None:
    create_role(stack, "metrics-only", statement("cloudwatch:PutMetricData"))
    instance = deploy(stack, app["device"], "metrics-only")
    creds = credentials_for(stack, app["device"], instance)

    cloudwatch = session_client(stack, "cloudwatch", creds)
    cloudwatch.put_metric_data(
        Namespace="Panoptes/RolesTest", MetricData=[{"MetricName": "people", "Value": 3.0}]
    )
    admin = stack_client(stack, "cloudwatch")
    listed = admin.list_metrics(Namespace="Panoptes/RolesTest")["Metrics"]
    assert [m["MetricName"] for m in listed] == ["people"]

    error = error_of(cloudwatch.list_metrics, Namespace="Panoptes/RolesTest")
    assert error["Code"] == "AccessDeniedException"  # CloudWatch speaks JSON/CBOR now
    assert "cloudwatch:ListMetrics on resource: *" in error["Message"]

    s3 = session_client(stack, "s3", creds)
    error = error_of(s3.put_object, Bucket=BUCKET, Key="uploads/1.jpg", Body=b"x")
    assert error["Code"] == "AccessDenied"
    assert "s3:PutObject on resource: arn:aws:s3:::app-media/uploads/1.jpg" in error["Message"]

    old = credentials_for(
        stack, app["device"], instance, now=datetime.now(UTC) - timedelta(hours=1, seconds=1)
    )
    expired = session_client(stack, "cloudwatch", old)
    error = error_of(
        expired.put_metric_data,
        Namespace="Panoptes/RolesTest",
        MetricData=[{"MetricName": "people", "Value": 4.0}],
    )
    assert error["Code"] == "ExpiredTokenException"


def test_iam_errors_reach_boto3_as_its_modeled_exceptions(stack: Stack) -> None:
    client = iam_client(stack)
    with pytest.raises(client.exceptions.NoSuchEntityException):
        client.get_role(RoleName="never-made")
    create_role(stack, "strict")
    error = error_of(
        iam, stack=stack, operation="PutRolePolicy", RoleName="strict", PolicyName="p",
        PolicyDocument='{"Version": "2012-10-17", "Statement": '
        '[{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "bucket/*"}]}',
    )  # fmt: skip
    assert error["Code"] == "MalformedPolicyDocument"
    assert "Statement[0].Resource" in error["Message"]
    role = client.get_role(RoleName="strict")["Role"]
    # botocore decodes the URL-encoded document IAM sends back.
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Action"] == "sts:AssumeRole"
    with pytest.raises(client.exceptions.EntityAlreadyExistsException):
        client.create_role(RoleName="strict", AssumeRolePolicyDocument=TRUST)


def test_log_permissions_follow_log_group_arns(stack: Stack, app: dict) -> None:
    mine = "/panoptes/apps/mine"
    create_role(
        stack,
        "own-logs",
        statement(
            ["logs:CreateLogStream", "logs:PutLogEvents"],
            f"arn:aws:logs:*:{stack.account}:log-group:{mine}:*",
        ),
    )
    admin = stack_client(stack, "logs")
    for group in (mine, "/panoptes/apps/other"):
        admin.create_log_group(logGroupName=group)
    admin.create_log_stream(logGroupName="/panoptes/apps/other", logStreamName="s")
    instance = deploy(stack, app["device"], "own-logs")
    logs = session_client(stack, "logs", credentials_for(stack, app["device"], instance))

    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    logs.create_log_stream(logGroupName=mine, logStreamName="s")
    logs.put_log_events(
        logGroupName=mine, logStreamName="s", logEvents=[{"timestamp": now_ms, "message": "hi"}]
    )
    events = admin.get_log_events(logGroupName=mine, logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["hi"]

    error = error_of(
        logs.put_log_events,
        logGroupName="/panoptes/apps/other",
        logStreamName="s",
        logEvents=[{"timestamp": now_ms, "message": "hi"}],
    )
    assert error["Code"] == "AccessDeniedException"
    assert (
        f"logs:PutLogEvents on resource: arn:aws:logs:us-east-1:{stack.account}:"
        "log-group:/panoptes/apps/other:log-stream:s" in error["Message"]
    )
