"""Roles from the command line: `panoptes roles` and the AWS CLI's own `aws iam`
against one served stack; both see the same roles."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from api_helpers import REGION, Stack, running_stack
from roles_support import TRUST, statement

from panoptes.settings import ServiceRecord
from serve_support import BIN, clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("cli-data")
    with running_stack("sqlite", data) as running:
        ServiceRecord(running.url, REGION).write(data)  # what `panoptes serve` writes
        yield running


def panoptes(stack: Stack, home: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(
        [sys.executable, "-m", "panoptes", *args, "--data-dir", str(stack.server.config.data_dir)],
        env=clean_env(home), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert (res.returncode == 0) == ok, res.stderr
    return res


def aws(stack: Stack, home: Path, *args: str) -> str:
    env = clean_env(home) | {
        "AWS_ACCESS_KEY_ID": stack.key_id,
        "AWS_SECRET_ACCESS_KEY": stack.secret,
        "AWS_ENDPOINT_URL": stack.url,
        "AWS_DEFAULT_REGION": REGION,
    }
    res = subprocess.run(
        [str(BIN / "aws"), *args, "--output", "json"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    return res.stdout


def policy_file(path: Path, *statements: dict) -> Path:
    path.write_text(json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    return path


def test_panoptes_roles_create_list_show_delete(stack: Stack, tmp_path: Path) -> None:
    policy = policy_file(
        tmp_path / "metrics.json",
        statement("cloudwatch:PutMetricData"),
        statement("s3:PutObject", "arn:aws:s3:::media/uploads/*"),
    )
    out = panoptes(stack, tmp_path, "roles", "create", "metrics", "--policy", str(policy)).stdout
    assert f"arn:aws:iam::{stack.account}:role/metrics" in out

    listed = panoptes(stack, tmp_path, "roles", "list").stdout
    assert f"metrics\tarn:aws:iam::{stack.account}:role/metrics" in listed

    shown = json.loads(panoptes(stack, tmp_path, "roles", "show", "metrics").stdout)
    assert shown["Policies"]["metrics"] == json.loads(policy.read_text())

    again = panoptes(
        stack, tmp_path, "roles", "create", "metrics", "--policy", str(policy), ok=False
    )
    assert "already exists" in again.stderr

    panoptes(stack, tmp_path, "roles", "delete", "metrics")
    gone = panoptes(stack, tmp_path, "roles", "show", "metrics", ok=False)
    assert "role metrics does not exist" in gone.stderr


def test_a_bad_policy_file_is_refused_before_anything_is_made(stack: Stack, tmp_path: Path) -> None:
    bad = policy_file(tmp_path / "bad.json", statement("s3:PutObject"), {"Effect": "Allow"})
    res = panoptes(stack, tmp_path, "roles", "create", "broken", "--policy", str(bad), ok=False)
    assert "Statement[1].Action is missing" in res.stderr
    assert "broken" not in panoptes(stack, tmp_path, "roles", "list").stdout


def test_aws_iam_scripts_work_unchanged(stack: Stack, tmp_path: Path) -> None:
    trust = tmp_path / "trust.json"
    trust.write_text(TRUST)
    policy = policy_file(tmp_path / "p.json", statement("iot:Publish", "arn:aws:iot:*:*:topic/a/*"))
    created = json.loads(
        aws(stack, tmp_path, "iam", "create-role", "--role-name", "from-cli",
            "--assume-role-policy-document", f"file://{trust}")
    )  # fmt: skip
    assert created["Role"]["Arn"] == f"arn:aws:iam::{stack.account}:role/from-cli"
    aws(stack, tmp_path, "iam", "put-role-policy", "--role-name", "from-cli",
        "--policy-name", "publish", "--policy-document", f"file://{policy}")  # fmt: skip
    got = json.loads(
        aws(stack, tmp_path, "iam", "get-role-policy", "--role-name", "from-cli",
            "--policy-name", "publish")
    )  # fmt: skip
    assert got["PolicyDocument"] == json.loads(policy.read_text())
    # The same role through panoptes.
    shown = json.loads(panoptes(stack, tmp_path, "roles", "show", "from-cli").stdout)
    assert list(shown["Policies"]) == ["publish"]
