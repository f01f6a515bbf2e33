"""IAM-shaped policy documents: validation, evaluation, and the request's action/resource.

A document is ``{"Version": "2012-10-17", "Statement": [{"Effect", "Action",
"Resource"}]}`` with ``*`` and ``?`` wildcards in actions (case-insensitive, as IAM
compares them) and resources (case-sensitive). Evaluation is IAM's: an explicit
Deny wins, else an Allow matching both action and resource, else implicit deny.

``authorize`` is what the HTTP front calls after parsing a request: credentials
without a policy (admin and user access keys) pass untouched; a role session's
request is named as IAM names it (``s3:PutObject`` on ``arn:aws:s3:::bucket/key``)
and refused with the protocol's AccessDenied code when the role does not allow it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from panoptes.cloud.errors import ServiceError

VERSIONS = ("2012-10-17", "2008-10-17")
EFFECTS = ("Allow", "Deny")

#: SigV4 signing name -> IAM action prefix (the two differ for CloudWatch and iot-data).
ACTION_PREFIX = {"monitoring": "cloudwatch", "iotdata": "iot"}

#: S3 operations whose IAM action is not the operation's own name.
S3_ACTIONS = {
    "HeadObject": "GetObject",
    "ListObjectsV2": "ListBucket",
    "HeadBucket": "ListBucket",
    "ListBuckets": "ListAllMyBuckets",
    # A multipart upload is a PutObject in IAM's eyes, part by part.
    "CreateMultipartUpload": "PutObject",
    "UploadPart": "PutObject",
    "CompleteMultipartUpload": "PutObject",
    "AbortMultipartUpload": "AbortMultipartUpload",
}

#: The error code each signing name's clients expect for a refused call.
_DENIED_CODE = {"s3": "AccessDenied", "iam": "AccessDenied", "sts": "AccessDenied"}


class PolicyError(ValueError):
    """A policy document that cannot be used; the message names statement and field."""


@dataclass(frozen=True)
class Statement:
    effect: str  # "Allow" or "Deny"
    actions: tuple[str, ...]
    resources: tuple[str, ...]

    def matches(self, action: str, resource: str) -> bool:
        return any(_pattern(a, True).fullmatch(action) for a in self.actions) and any(
            _pattern(r, False).fullmatch(resource) for r in self.resources
        )


@dataclass(frozen=True)
class Policy:
    statements: tuple[Statement, ...]

    def decide(self, action: str, resource: str) -> str:
        """ "Allow", "Deny" (an explicit Deny matched) or "ImplicitDeny" (nothing did)."""
        matching = [s.effect for s in self.statements if s.matches(action, resource)]
        if "Deny" in matching:
            return "Deny"
        return "Allow" if "Allow" in matching else "ImplicitDeny"

    def allows(self, action: str, resource: str) -> bool:
        return self.decide(action, resource) == "Allow"

    @classmethod
    def combine(cls, policies: list[Policy]) -> Policy:
        """One policy holding every statement of ``policies`` (a role's inline set)."""
        return cls(tuple(s for p in policies for s in p.statements))


@lru_cache(maxsize=4096)
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in text)
    return re.compile(regex, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def _strings(value: Any, where: str) -> tuple[str, ...]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items or not all(isinstance(v, str) for v in items):
        raise PolicyError(f"{where} must be a string or a non-empty list of strings")
    if any(not v for v in items):
        raise PolicyError(f"{where} holds an empty string")
    return tuple(items)


def _statement(raw: Any, index: int) -> Statement:
    where = f"Statement[{index}]"
    if not isinstance(raw, dict):
        raise PolicyError(f"{where} must be an object with Effect, Action and Resource")
    unsupported = sorted(set(raw) - {"Sid", "Effect", "Action", "Resource"})
    if unsupported:
        # NotAction/NotResource/Condition/Principal would change what the statement
        # means; accepting and ignoring them would grant more than was written.
        raise PolicyError(
            f"{where}: {', '.join(unsupported)} is not supported here; "
            "use Effect, Action and Resource (and an optional Sid)"
        )
    effect = raw.get("Effect")
    if effect not in EFFECTS:
        raise PolicyError(f'{where}.Effect must be "Allow" or "Deny", not {effect!r}')
    for name in ("Action", "Resource"):
        if name not in raw:
            raise PolicyError(f"{where}.{name} is missing")
    actions = _strings(raw["Action"], f"{where}.Action")
    for action in actions:
        if action != "*" and ":" not in action:
            raise PolicyError(
                f"{where}.Action {action!r} must look like SERVICE:Operation "
                "(for example s3:PutObject or cloudwatch:PutMetricData)"
            )
    resources = _strings(raw["Resource"], f"{where}.Resource")
    for resource in resources:
        if resource != "*" and not resource.startswith("arn:"):
            raise PolicyError(
                f'{where}.Resource {resource!r} must be "*" or an ARN '
                "(for example arn:aws:s3:::my-bucket/uploads/*)"
            )
    return Statement(effect, actions, resources)


def parse_policy(document: str | dict[str, Any]) -> Policy:
    """Validate a policy document (JSON text or parsed); PolicyError names the problem."""
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise PolicyError(f"the policy document is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise PolicyError("the policy document must be a JSON object with Version and Statement")
    version = document.get("Version")
    if version not in VERSIONS:
        raise PolicyError(f'Version must be "2012-10-17", not {version!r}')
    raw = document.get("Statement")
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise PolicyError("Statement must be a statement object or a non-empty list of them")
    return Policy(tuple(_statement(s, i) for i, s in enumerate(raw)))


@lru_cache(maxsize=1024)
def parse_policies(documents: tuple[str, ...]) -> Policy:
    """A role's stored inline documents as one policy (cached: sessions repeat them)."""
    return Policy.combine([parse_policy(d) for d in documents])


# --- what a request is, in IAM's words -----------------------------------------------


def action_for(service: str, operation: str) -> str:
    """``("monitoring", "PutMetricData")`` -> ``cloudwatch:PutMetricData``."""
    prefix = ACTION_PREFIX.get(service, service)
    if service == "s3":
        operation = S3_ACTIONS.get(operation, operation)
    return f"{prefix}:{operation}"


def resource_for(service: str, params: dict[str, Any], region: str, account: str) -> str:
    """The ARN a request acts on (``*`` for services whose calls name no resource)."""
    if service == "s3":
        bucket, key = params.get("Bucket"), params.get("Key")
        if not bucket:
            return "*"
        return f"arn:aws:s3:::{bucket}/{key}" if key is not None else f"arn:aws:s3:::{bucket}"
    if service == "iotdata" and params.get("topic") is not None:
        return f"arn:aws:iot:{region}:{account}:topic/{params['topic']}"
    if service == "logs" and params.get("logGroupName"):
        arn = f"arn:aws:logs:{region}:{account}:log-group:{params['logGroupName']}"
        # Stream operations act on the stream, as in IAM: log-group:G:log-stream:S.
        if params.get("logStreamName"):
            arn += f":log-stream:{params['logStreamName']}"
        return arn
    return "*"


class AccessDenied(ServiceError):
    default_status = 403


def authorize(
    credential: Any, service: str, operation: str, params: dict[str, Any], region: str
) -> None:
    """Refuse a role session's call its policy does not allow; other keys pass.

    ``credential`` is a ``panoptes.cloud.backend.Credential``; ``service`` the SigV4
    signing name. The message names principal, action and resource, as IAM's does.
    """
    policy: Policy | None = credential.policy
    if policy is None:
        return
    action = action_for(service, operation)
    resource = resource_for(service, params, region, credential.account_id)
    decision = policy.decide(action, resource)
    if decision == "Allow":
        return
    why = (
        "with an explicit deny in an identity-based policy"
        if decision == "Deny"
        else f"because no identity-based policy allows the {action} action"
    )
    raise AccessDenied(
        _DENIED_CODE.get(service, "AccessDeniedException"),
        f"User: {credential.principal} is not authorized to perform: {action} "
        f"on resource: {resource} {why}",
    )
