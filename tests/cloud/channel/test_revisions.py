"""Desired-state revisions and acknowledgements (DeviceView, SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_helpers import deploy_params, provision, publish_sample_app, running_stack


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_an_ack_marks_delivered_only_what_its_revision_held(kind: str, tmp_path: Path) -> None:
    with running_stack(kind, tmp_path / "data") as stack:
        device = provision(stack, "box")
        publish_sample_app(stack)
        api, view = stack.client(), stack.view
        first = api.create_application_instance(**deploy_params(stack, device))
        r1 = view.publishable_state(device)["Revision"]
        assert view.publishable_state(device)["Revision"] == r1  # nothing changed
        # A second deployment commits after r1 was published, before the device acks.
        second = api.create_application_instance(**deploy_params(stack, device))
        now = datetime.now(UTC)
        assert view.acknowledge(device, r1, now) == []  # r1 lacks the second one
        assert {i["Status"] for i in api.list_application_instances()["ApplicationInstances"]} == {
            "DEPLOYMENT_PENDING"
        }
        state = view.publishable_state(device)
        r2 = state["Revision"]
        assert r2 == r1 + 1 and len(state["ApplicationInstances"]) == 2
        marked = view.acknowledge(device, r2, now)
        assert set(marked) == {first["ApplicationInstanceId"], second["ApplicationInstanceId"]}
        assert view.acknowledge(device, r1, now) == []  # an old ack changes nothing
        # Statuses move with reports; the revision does not.
        view.report_instance_status(
            device, first["ApplicationInstanceId"], "DEPLOYMENT_IN_PROGRESS", now
        )
        again = view.publishable_state(device)
        assert again["Revision"] == r2
        statuses = {a["Status"] for a in again["ApplicationInstances"]}
        assert statuses == {"DEPLOYMENT_IN_PROGRESS", "DEPLOYMENT_REQUESTED"}
        # Removal is new work: a new revision.
        api.remove_application_instance(ApplicationInstanceId=second["ApplicationInstanceId"])
        assert view.publishable_state(device)["Revision"] == r2 + 1
