"""Policy documents: validation that names statement and field, IAM's evaluation order,
and how a request is named (action, resource ARN) for each service."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from panoptes.cloud.policy import (
    AccessDenied,
    PolicyError,
    action_for,
    authorize,
    parse_policies,
    parse_policy,
    resource_for,
)


def doc(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(action, resource="*") -> dict:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def deny(action, resource="*") -> dict:
    return {"Effect": "Deny", "Action": action, "Resource": resource}


@pytest.mark.parametrize(
    ("statements", "names"),
    [
        ([allow("s3:PutObject"), {"Effect": "Permit", "Action": "s3:*", "Resource": "*"}],
         ["Statement[1].Effect", "Allow"]),
        ([allow("s3:PutObject"), {"Effect": "Allow", "Resource": "*"}],
         ["Statement[1].Action", "missing"]),
        ([allow("PutObject")], ["Statement[0].Action", "SERVICE:Operation"]),
        ([allow("s3:PutObject", "my-bucket/*")], ["Statement[0].Resource", "ARN"]),
        ([allow([], "*")], ["Statement[0].Action", "non-empty list"]),
        ([{**allow("s3:*"), "Condition": {"Bool": {}}}], ["Statement[0]", "Condition"]),
        ([allow("s3:*", [""])], ["Statement[0].Resource", "empty"]),
    ],
)  # fmt: skip
def test_bad_statements_are_named_by_index_and_field(statements, names) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc(*statements))
    for name in names:
        assert name in str(caught.value)


def test_bad_documents() -> None:
    with pytest.raises(PolicyError, match="not valid JSON"):
        parse_policy("{'Version': ")
    with pytest.raises(PolicyError, match="Version"):
        parse_policy({"Version": "2020-01-01", "Statement": [allow("*")]})
    with pytest.raises(PolicyError, match="Statement"):
        parse_policy({"Version": "2012-10-17", "Statement": []})


def test_a_single_statement_object_and_string_fields_are_accepted() -> None:
    policy = parse_policy({"Version": "2012-10-17", "Statement": allow("cloudwatch:PutMetricData")})
    assert policy.allows("cloudwatch:PutMetricData", "*")


def test_explicit_deny_wins_over_any_allow() -> None:
    policy = parse_policy(
        doc(allow("s3:*", "arn:aws:s3:::media/*"), deny("s3:PutObject", "arn:aws:s3:::media/ro/*"))
    )
    assert policy.decide("s3:PutObject", "arn:aws:s3:::media/rw/a.jpg") == "Allow"
    assert policy.decide("s3:PutObject", "arn:aws:s3:::media/ro/a.jpg") == "Deny"
    assert policy.decide("s3:GetObject", "arn:aws:s3:::media/ro/a.jpg") == "Allow"
    assert policy.decide("s3:PutObject", "arn:aws:s3:::other/a.jpg") == "ImplicitDeny"


def test_action_and_resource_must_both_match() -> None:
    policy = parse_policy(doc(allow("s3:PutObject", "arn:aws:s3:::media/uploads/*")))
    assert policy.allows("s3:PutObject", "arn:aws:s3:::media/uploads/cam1/0001.jpg")
    assert not policy.allows("s3:PutObject", "arn:aws:s3:::media/other.jpg")
    assert not policy.allows("s3:GetObject", "arn:aws:s3:::media/uploads/cam1/0001.jpg")


def test_wildcards_actions_ignore_case_resources_do_not() -> None:
    policy = parse_policy(
        doc(allow(["iot:Pub*", "logs:?utLogEvents"], "arn:aws:iot:*:*:topic/a/*"))
    )
    assert policy.allows("iot:publish", "arn:aws:iot:us-east-1:111122223333:topic/a/b")
    assert policy.allows("logs:PutLogEvents", "arn:aws:iot:eu-west-1:1:topic/a/")
    assert not policy.allows("iot:Publish", "arn:aws:iot:us-east-1:111122223333:topic/A/b")
    # Regex characters in a pattern are literal.
    literal = parse_policy(doc(allow("s3:*", "arn:aws:s3:::a.b/(x)+")))
    assert literal.allows("s3:GetObject", "arn:aws:s3:::a.b/(x)+")
    assert not literal.allows("s3:GetObject", "arn:aws:s3:::aXb/xx")


def test_a_role_without_policies_allows_nothing() -> None:
    assert not parse_policies(()).allows("panorama:ListDevices", "*")
    both = parse_policies((doc(allow("s3:GetObject")), doc(allow("s3:PutObject"))))
    assert both.allows("s3:GetObject", "*") and both.allows("s3:PutObject", "*")


def test_requests_are_named_as_iam_names_them() -> None:
    assert action_for("monitoring", "PutMetricData") == "cloudwatch:PutMetricData"
    assert action_for("iotdata", "Publish") == "iot:Publish"
    assert action_for("s3", "UploadPart") == "s3:PutObject"
    assert action_for("s3", "ListObjectsV2") == "s3:ListBucket"
    assert action_for("s3", "HeadObject") == "s3:GetObject"
    assert action_for("panorama", "ListDevices") == "panorama:ListDevices"
    r, a = "us-east-1", "111122223333"
    assert resource_for("s3", {"Bucket": "b", "Key": "k/1.jpg"}, r, a) == "arn:aws:s3:::b/k/1.jpg"
    assert resource_for("s3", {"Bucket": "b", "Prefix": "k/"}, r, a) == "arn:aws:s3:::b"
    assert resource_for("s3", {}, r, a) == "*"
    assert resource_for("iotdata", {"topic": "x/y"}, r, a) == f"arn:aws:iot:{r}:{a}:topic/x/y"
    assert resource_for("logs", {"logGroupName": "g"}, r, a) == f"arn:aws:logs:{r}:{a}:log-group:g"
    assert (
        resource_for("logs", {"logGroupName": "g", "logStreamName": "s"}, r, a)
        == f"arn:aws:logs:{r}:{a}:log-group:g:log-stream:s"
    )
    assert resource_for("monitoring", {"Namespace": "x"}, r, a) == "*"


@dataclass(frozen=True)
class _Key:
    account_id: str
    principal: str
    policy: object


def test_authorize_names_principal_action_and_resource() -> None:
    session = _Key(
        "111122223333",
        "arn:aws:sts::111122223333:assumed-role/metrics/applicationInstance-1",
        parse_policy(doc(allow("cloudwatch:PutMetricData"))),
    )
    authorize(session, "monitoring", "PutMetricData", {}, "us-east-1")
    with pytest.raises(AccessDenied) as caught:
        authorize(session, "s3", "PutObject", {"Bucket": "b", "Key": "k"}, "us-east-1")
    assert caught.value.code == "AccessDenied"
    assert caught.value.message.startswith(
        "User: arn:aws:sts::111122223333:assumed-role/metrics/applicationInstance-1 is not "
        "authorized to perform: s3:PutObject on resource: arn:aws:s3:::b/k"
    )
    with pytest.raises(AccessDenied) as caught:
        authorize(session, "panorama", "ListDevices", {}, "us-east-1")
    assert caught.value.code == "AccessDeniedException"
    # Long-lived keys carry no policy: full access.
    authorize(_Key("111122223333", "admin", None), "s3", "PutObject", {}, "us-east-1")
