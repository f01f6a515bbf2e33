"""What the role tests share: roles made through the IAM backend, an instance deployed
with a RuntimeRoleArn, and boto3 clients holding a role session's credentials."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from api_helpers import REGION, Stack, deploy_params, panorama_session, provision
from botocore import xform_name
from botocore.config import Config

from panoptes.cloud.services.roles import issue_role_credentials

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


def statement(action: str | list[str], resource: str = "*", effect: str = "Allow") -> dict:
    return {"Effect": effect, "Action": action, "Resource": resource}


def stack_client(stack: Stack, service: str) -> Any:
    """A boto3 client of ``service`` as the admin, against the stack."""
    return panorama_session().client(
        service,
        endpoint_url=stack.url,
        region_name=REGION,
        aws_access_key_id=stack.key_id,
        aws_secret_access_key=stack.secret,
    )


def iam_client(stack: Stack) -> Any:
    return stack_client(stack, "iam")


def iam(stack: Stack, operation: str, **params: Any) -> dict[str, Any]:
    """One IAM operation (``"PutRolePolicy"``) through boto3 and the query protocol."""
    return getattr(iam_client(stack), xform_name(operation))(**params)


def create_role(stack: Stack, name: str, *statements: dict) -> str:
    arn = iam(stack, "CreateRole", RoleName=name, AssumeRolePolicyDocument=TRUST)["Role"]["Arn"]
    if statements:
        put_policy(stack, name, "app", *statements)
    return arn


def put_policy(stack: Stack, role: str, policy: str, *statements: dict) -> None:
    document = json.dumps({"Version": "2012-10-17", "Statement": list(statements)})
    iam(stack, "PutRolePolicy", RoleName=role, PolicyName=policy, PolicyDocument=document)


def deploy(stack: Stack, device: str, role: str | None) -> str:
    """The sample app (already published) on ``device``, with role ``role`` or none."""
    params = deploy_params(stack, device)
    if role is None:
        params.pop("RuntimeRoleArn")
    else:
        params["RuntimeRoleArn"] = f"arn:aws:iam::{stack.account}:role/{role}"
    return stack.client().create_application_instance(**params)["ApplicationInstanceId"]


def new_device(stack: Stack, name: str) -> str:
    return provision(stack, name)


def credentials_for(
    stack: Stack, device: str, instance: str, now: datetime | None = None
) -> dict[str, str]:
    env = stack.server.backend.env
    return issue_role_credentials(env, device, instance, now or datetime.now(UTC))


def session_client(
    stack: Stack, service: str, creds: dict[str, str], token: Any = ..., **config: Any
) -> Any:
    """A boto3 client of ``service`` signing with the session (``token`` to override it)."""
    return panorama_session().client(
        service,
        endpoint_url=stack.url,
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["Token"] if token is ... else token,
        config=Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            s3={"addressing_style": "path"},
            **config,
        ),
    )
