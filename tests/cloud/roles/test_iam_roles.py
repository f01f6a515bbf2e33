"""The IAM role operations through IamBackend.handle (SQLite and PostgreSQL): IAM's
shapes, its error codes, policies checked when they are put."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

import pytest

from panoptes.cloud.context import RequestContext
from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services.roles import IamBackend

ACCOUNT = "123456789012"
T0 = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "panorama.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)
METRICS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "cloudwatch:PutMetricData", "Resource": "*"}],
    }
)


class Iam:
    def __init__(self, backend: IamBackend, account: str = ACCOUNT) -> None:
        self.backend, self.account = backend, account

    def __call__(self, operation: str, **params: Any) -> dict[str, Any]:
        ctx = RequestContext(self.account, "us-east-1", "AKIATEST", "admin", now=T0)
        return self.backend.handle(operation, ctx, params)

    def fails(self, code: str, operation: str, **params: Any) -> str:
        with pytest.raises(ServiceError) as caught:
            self(operation, **params)
        assert caught.value.code == code, caught.value.message
        return caught.value.message


@pytest.fixture
def iam(db) -> Iam:
    return Iam(IamBackend(db))


def test_role_lifecycle(iam: Iam) -> None:
    role = iam("CreateRole", RoleName="metrics", AssumeRolePolicyDocument=TRUST)["Role"]
    assert role["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/metrics"
    assert role["RoleId"].startswith("AROA") and role["Path"] == "/"
    assert json.loads(unquote(role["AssumeRolePolicyDocument"])) == json.loads(TRUST)
    assert iam("GetRole", RoleName="metrics")["Role"]["RoleId"] == role["RoleId"]
    iam.fails(
        "EntityAlreadyExistsException",
        "CreateRole",
        RoleName="metrics",
        AssumeRolePolicyDocument=TRUST,
    )

    iam("PutRolePolicy", RoleName="metrics", PolicyName="put-metrics", PolicyDocument=METRICS)
    got = iam("GetRolePolicy", RoleName="metrics", PolicyName="put-metrics")
    assert json.loads(unquote(got["PolicyDocument"])) == json.loads(METRICS)
    assert iam("ListRolePolicies", RoleName="metrics")["PolicyNames"] == ["put-metrics"]

    message = iam.fails("DeleteConflictException", "DeleteRole", RoleName="metrics")
    assert "delete policies first" in message
    iam("DeleteRolePolicy", RoleName="metrics", PolicyName="put-metrics")
    iam.fails("NoSuchEntityException", "GetRolePolicy", RoleName="metrics", PolicyName="x")
    iam("DeleteRole", RoleName="metrics")
    iam.fails("NoSuchEntityException", "GetRole", RoleName="metrics")
    assert iam("ListRoles")["Roles"] == []


def test_a_bad_policy_is_refused_naming_statement_and_field(iam: Iam) -> None:
    iam("CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST)
    bad = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
                {"Effect": "Allow", "Action": "PutObject", "Resource": "*"},
            ],
        }
    )
    message = iam.fails(
        "MalformedPolicyDocumentException",
        "PutRolePolicy",
        RoleName="r",
        PolicyName="p",
        PolicyDocument=bad,
    )
    assert "Statement[1].Action" in message
    # The failed put left nothing behind.
    assert iam("ListRolePolicies", RoleName="r")["PolicyNames"] == []
    iam.fails(
        "MalformedPolicyDocumentException",
        "CreateRole",
        RoleName="t",
        AssumeRolePolicyDocument="not json",
    )
    iam.fails("ValidationError", "CreateRole", RoleName="no spaces", AssumeRolePolicyDocument=TRUST)


def test_roles_page_and_stay_in_their_account(iam: Iam, db) -> None:
    for n in range(5):
        iam("CreateRole", RoleName=f"role-{n}", AssumeRolePolicyDocument=TRUST, Path="/apps/")
    first = iam("ListRoles", MaxItems=2)
    assert [r["RoleName"] for r in first["Roles"]] == ["role-0", "role-1"]
    assert first["IsTruncated"]
    rest = iam("ListRoles", Marker=first["Marker"], MaxItems=10)
    assert [r["RoleName"] for r in rest["Roles"]] == ["role-2", "role-3", "role-4"]
    assert not rest["IsTruncated"]
    assert rest["Roles"][0]["Arn"] == f"arn:aws:iam::{ACCOUNT}:role/apps/role-2"
    assert iam("ListRoles", PathPrefix="/other/")["Roles"] == []

    other = Iam(IamBackend(db), account="210987654321")
    assert other("ListRoles")["Roles"] == []
    other.fails("NoSuchEntityException", "GetRole", RoleName="role-0")
    # The same name in another account is another role.
    other("CreateRole", RoleName="role-0", AssumeRolePolicyDocument=TRUST)


def test_unsupported_iam_operations_say_what_is_served(iam: Iam) -> None:
    message = iam.fails("InvalidAction", "CreateUser", UserName="bob")
    assert "CreateRole" in message
