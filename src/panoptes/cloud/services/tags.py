"""TagResource, UntagResource, ListTagsForResource on devices, packages, applications."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from panoptes.cloud.db.models import ApplicationInstance, Device, Package, Tag
from panoptes.cloud.errors import ResourceNotFound
from panoptes.cloud.services.common import Call, invalid, owned, set_tags, tags_of

_ARN = re.compile(
    r"^arn:aws:panorama:(?P<region>[a-z0-9-]+):(?P<account>[0-9]{12}):"
    r"(?P<kind>device|package|applicationInstance)/(?P<id>[A-Za-z0-9_-]+)$"
)
_MODELS = {"device": Device, "package": Package, "applicationInstance": ApplicationInstance}


def _resource(call: Call, resource_arn: str) -> str:
    """The ARN, once it names a resource of the caller; ResourceNotFound otherwise."""
    if not resource_arn.startswith("arn:"):
        raise invalid("ResourceArn", "is not an ARN (arn:aws:panorama:REGION:ACCOUNT:TYPE/ID)")
    m = _ARN.match(resource_arn)
    if m is None or m["account"] != call.account or m["region"] != call.ctx.region:
        raise ResourceNotFound(resource_arn, "resource")
    if owned(call, _MODELS[m["kind"]], m["id"]) is None:
        raise ResourceNotFound(resource_arn, m["kind"])
    return resource_arn


def tag_resource(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    set_tags(call, _resource(call, p["ResourceArn"]), p["Tags"])
    return {}


def untag_resource(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    resource_arn = _resource(call, p["ResourceArn"])
    for row in call.session.scalars(
        select(Tag).where(Tag.resource_arn == resource_arn, Tag.key.in_(p["TagKeys"]))
    ):
        call.session.delete(row)
    return {}


def list_tags_for_resource(call: Call, p: dict[str, Any]) -> dict[str, Any]:
    return {"Tags": tags_of(call.session, _resource(call, p["ResourceArn"]))}
