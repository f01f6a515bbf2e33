"""`panoptes roles`: application roles, named at deployment with RuntimeRoleArn.

A thin client of the IAM API (CreateRole, PutRolePolicy, GetRole, ListRoles,
ListRolePolicies, GetRolePolicy, DeleteRolePolicy, DeleteRole): roles made here and
with ``aws iam`` are the same roles. A role made here trusts panorama.amazonaws.com
(kept for compatibility; Panoptes does not enforce trust documents) and holds one
inline policy, named like the role, read from --policy FILE.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import typer
from botocore.exceptions import BotoCoreError, ClientError

from panoptes.cli.cloudwatch_clients import DataDir, api_error, client, fail
from panoptes.cloud.policy import PolicyError, parse_policy

roles_cli = typer.Typer(
    name="roles",
    help="Application roles (IAM API): what an app's AWS calls may do.",
    no_args_is_help=True,
)

TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Principal": {"Service": "panorama.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }
    ],
}


def _read_policy(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise fail(f"--policy {path}: {exc.strerror or exc}", "give a readable JSON file") from None
    try:
        parse_policy(text)
    except PolicyError as exc:
        raise fail(
            f"--policy {path}: {exc}",
            'a policy is {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "cloudwatch:PutMetricData", "Resource": "*"}]}',
        ) from None
    return text


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@roles_cli.command("create")
def create(
    name: str = typer.Argument(..., help="Role name (unique in the account)."),
    policy: Path = typer.Option(..., "--policy", help="The role's policy document (JSON)."),
    description: str = typer.Option(None, "--description"),
    data_dir: Path = DataDir,
) -> None:
    """Create a role with one inline policy; deploy with its ARN as RuntimeRoleArn."""
    document = _read_policy(policy)  # checked before anything is created
    iam = client("iam", data_dir)
    params: dict[str, Any] = {"RoleName": name, "AssumeRolePolicyDocument": json.dumps(TRUST)}
    if description:
        params["Description"] = description
    try:
        role = iam.create_role(**params)["Role"]
    except ClientError as exc:
        if _code(exc) == "EntityAlreadyExists":
            raise fail(
                f"role {name} already exists",
                f"change its policy with `aws iam put-role-policy --role-name {name} ...`, "
                f"or `panoptes roles delete {name}` first",
            ) from None
        raise api_error(exc, f"creating role {name}") from None
    except BotoCoreError as exc:
        raise api_error(exc, f"creating role {name}") from None
    try:
        iam.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=document)
    except (ClientError, BotoCoreError) as exc:
        # No half-made role left behind: a role without its policy would allow nothing.
        with contextlib.suppress(ClientError, BotoCoreError):
            iam.delete_role(RoleName=name)
        raise api_error(exc, f"putting the policy of role {name}") from None
    typer.echo(f"role {name} {role['Arn']}")


@roles_cli.command("list")
def list_roles(data_dir: Path = DataDir) -> None:
    """Every role of the account: name and ARN."""
    iam = client("iam", data_dir)
    try:
        for page in iam.get_paginator("list_roles").paginate():
            for role in page["Roles"]:
                typer.echo(f"{role['RoleName']}\t{role['Arn']}")
    except (ClientError, BotoCoreError) as exc:
        raise api_error(exc, "listing roles") from None


@roles_cli.command("show")
def show(name: str = typer.Argument(...), data_dir: Path = DataDir) -> None:
    """A role's ARN and its inline policies, as JSON."""
    iam = client("iam", data_dir)
    try:
        role = iam.get_role(RoleName=name)["Role"]
        policies = {}
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            for policy in page["PolicyNames"]:
                got = iam.get_role_policy(RoleName=name, PolicyName=policy)
                policies[policy] = got["PolicyDocument"]
    except ClientError as exc:
        if _code(exc) == "NoSuchEntity":
            raise fail(f"role {name} does not exist", "see `panoptes roles list`") from None
        raise api_error(exc, f"reading role {name}") from None
    except BotoCoreError as exc:
        raise api_error(exc, f"reading role {name}") from None
    out = {
        "RoleName": role["RoleName"],
        "Arn": role["Arn"],
        "CreateDate": role["CreateDate"].isoformat(),
        "Policies": policies,
    }
    typer.echo(json.dumps(out, indent=2))


@roles_cli.command("delete")
def delete(name: str = typer.Argument(...), data_dir: Path = DataDir) -> None:
    """Delete a role and its inline policies; apps using it lose their credentials."""
    iam = client("iam", data_dir)
    try:
        for page in iam.get_paginator("list_role_policies").paginate(RoleName=name):
            for policy in page["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy)
        iam.delete_role(RoleName=name)
    except ClientError as exc:
        if _code(exc) == "NoSuchEntity":
            raise fail(f"role {name} does not exist", "see `panoptes roles list`") from None
        raise api_error(exc, f"deleting role {name}") from None
    except BotoCoreError as exc:
        raise api_error(exc, f"deleting role {name}") from None
    typer.echo(f"deleted role {name}")
