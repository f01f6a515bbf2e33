"""Tags on every taggable ARN."""

from __future__ import annotations

import pytest
from package_helpers import publish_sample_app, sample_payloads
from svc_constants import ACCOUNT


@pytest.fixture
def arns(api):
    publish_sample_app(api)
    device = api.provision()
    g, o = sample_payloads()
    app = api(
        "CreateApplicationInstance",
        DefaultRuntimeContextDevice=device,
        ManifestPayload={"PayloadData": g},
        ManifestOverridesPayload={"PayloadData": o},
    )["ApplicationInstanceId"]
    package = api("ListPackages")["Packages"][0]["PackageId"]
    base = f"arn:aws:panorama:us-east-1:{ACCOUNT}"
    return [
        f"{base}:device/{device}",
        f"{base}:package/{package}",
        f"{base}:applicationInstance/{app}",
    ]


def test_tag_untag_list_on_each_resource(api, arns):
    for resource_arn in arns:
        api("TagResource", ResourceArn=resource_arn, Tags={"env": "prod", "team": "cv"})
        assert api("ListTagsForResource", ResourceArn=resource_arn)["Tags"] == {
            "env": "prod",
            "team": "cv",
        }
        api("UntagResource", ResourceArn=resource_arn, TagKeys=["env"])
        assert api("ListTagsForResource", ResourceArn=resource_arn)["Tags"] == {"team": "cv"}


def test_unknown_arns(api, arns):
    base = f"arn:aws:panorama:us-east-1:{ACCOUNT}"
    for bad in (
        f"{base}:device/device-nope",
        f"arn:aws:panorama:us-east-1:999999999999:device/{arns[0].split('/')[-1]}",
        f"{base}:camera/x",
    ):
        for op, extra in (
            ("ListTagsForResource", {}),
            ("TagResource", {"Tags": {"a": "b"}}),
            ("UntagResource", {"TagKeys": ["a"]}),
        ):
            api.fails("ResourceNotFoundException", op, ResourceArn=bad, **extra)
    api.fails("ValidationException", "ListTagsForResource", ResourceArn="device-1")
    api.fails("ValidationException", "TagResource", ResourceArn=arns[0], Tags={"aws:x": "y"})


class TestLimit:
    @pytest.fixture
    def limits(self, low_limits):
        return low_limits

    def test_tags_per_resource(self, api, arns):
        api("TagResource", ResourceArn=arns[0], Tags={"a": "1", "b": "2", "c": "3"})
        api("TagResource", ResourceArn=arns[0], Tags={"a": "changed"})
        api.fails("ValidationException", "TagResource", ResourceArn=arns[0], Tags={"d": "4"})
