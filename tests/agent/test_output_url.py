"""The live output URL a device reports: stored per instance by the control plane and
handed to the console's relay, for the instance's own account only."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from agent_support import apply_report
from api_helpers import Stack, deploy_params, provision, publish_sample_app

from panoptes import link
from panoptes.cloud.context import RequestContext


def _health(instance: str, url: str | None) -> dict[str, Any]:
    return {
        "Type": link.REPORT_HEALTH,
        "ApplicationInstanceId": instance,
        "HealthStatus": "RUNNING",
        "Nodes": {},
        "OutputUrl": url,
    }


def _console_url(stack: Stack, account: str, instance: str) -> str | None:
    ctx = RequestContext(account_id=account, region="us-east-1", access_key_id="", principal="")
    return stack.server.console.live.mjpeg_url(ctx, instance)


@pytest.fixture(scope="module")
def deployed(stack: Stack) -> tuple[str, str]:
    """(device, instance): the sample deployed on a device that is online."""
    device = provision(stack, "output-url")
    publish_sample_app(stack)
    instance = stack.client().create_application_instance(**deploy_params(stack, device))[
        "ApplicationInstanceId"
    ]
    return device, instance


def test_the_reported_output_url_is_what_the_console_relays(
    stack: Stack, deployed: tuple[str, str]
) -> None:
    device, instance = deployed
    assert _console_url(stack, stack.account, instance) is None  # nothing reported yet
    url = "http://192.0.2.7:41234/stream.mjpg"
    apply_report(stack.view, device, _health(instance, url))
    assert stack.view.output_url(stack.account, instance) == url
    assert _console_url(stack, stack.account, instance) == url
    assert _console_url(stack, "999999999999", instance) is None  # another account's
    # The output server stopped (the sink restarts): the report says null, and so do we.
    apply_report(stack.view, device, _health(instance, None))
    assert _console_url(stack, stack.account, instance) is None


def test_an_output_url_that_is_not_http_is_refused(stack: Stack, deployed: tuple[str, str]) -> None:
    device, instance = deployed
    with pytest.raises(ValueError, match="OutputUrl"):
        stack.view.report_health(
            device, instance, "RUNNING", datetime.now(UTC), None, "file:///etc/passwd"
        )
