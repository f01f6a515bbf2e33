"""A real application under panoptes.runtime calls AWS with boto3 and no code change:
its role's credentials come through the container-credentials endpoint (fed by the
device-side RoleCredentialsProvider), AWS_REGION and AWS_ENDPOINT_URL point at the
control plane. The role allows only cloudwatch:PutMetricData: the metric lands,
s3:PutObject is AccessDenied."""

from __future__ import annotations

import json
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
from api_helpers import publish_sample_app, running_stack
from roles_support import create_role, deploy, new_device, stack_client, statement

from panoptes.agent.role_credentials import RoleCredentialsProvider
from panoptes.cloud.services.roles import NoRole, issue_role_credentials

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "e2e"))
import appkit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

APP = textwrap.dedent(
    """
    import json
    import boto3
    import panoramasdk
    from botocore.config import Config
    from botocore.exceptions import ClientError

    node = panoramasdk.node()
    results = {}
    cloudwatch = boto3.client("cloudwatch")
    cloudwatch.put_metric_data(
        Namespace="Panoptes/App", MetricData=[{"MetricName": "frames", "Value": 1.0}]
    )
    results["metric"] = "ok"
    s3 = boto3.client("s3", config=Config(s3={"addressing_style": "path"}))
    try:
        s3.put_object(Bucket="app-media", Key="uploads/frame.jpg", Body=b"jpeg")
        results["s3"] = "ok"
    except ClientError as e:
        results["s3"] = [e.response["Error"]["Code"], e.response["Error"]["Message"]]
    with open("/opt/aws/panorama/storage/results.json", "w") as f:
        json.dump(results, f)
    while True:
        node.outputs.video_out.put(node.inputs.video_in.get())
    """
)


def test_an_app_with_a_metrics_only_role(tmp_path: Path, monkeypatch) -> None:
    clip = appkit.make_clip(tmp_path / "clip.mp4", frames=10)
    with running_stack("sqlite", tmp_path / "data") as stack:
        publish_sample_app(stack)
        stack_client(stack, "s3").create_bucket(Bucket="app-media")
        create_role(stack, "metrics-only", statement("cloudwatch:PutMetricData"))
        device = new_device(stack, "app-appliance")
        instance = deploy(stack, device, "metrics-only")
        fetches: list[str] = []

        def fetch() -> dict | None:
            # What the agent asks the device endpoint for (GET /device/v1/credentials/...).
            fetches.append(instance)
            try:
                return issue_role_credentials(
                    stack.server.backend.env, device, instance, datetime.now(UTC)
                )
            except NoRole:
                return None

        monkeypatch.setenv("AWS_ENDPOINT_URL", stack.url)
        project = appkit.build_project(tmp_path / "project", {"application.py": APP})
        runtime = appkit.start_runtime(
            tmp_path,
            project,
            {"camera_node": [str(clip)]},
            credentials=RoleCredentialsProvider(fetch),
        )
        with runtime as rt:
            assert rt.wait_finished(timeout=90), rt.app_log()
            results_file = tmp_path / "storage" / "code_node" / "results.json"
            assert results_file.exists(), rt.app_log()
        results = json.loads(results_file.read_text())
        assert results["metric"] == "ok"
        code, message = results["s3"]
        assert code == "AccessDenied"
        assert (
            f"assumed-role/metrics-only/{instance} is not authorized to perform: s3:PutObject "
            "on resource: arn:aws:s3:::app-media/uploads/frame.jpg" in message
        )
        metrics = stack_client(stack, "cloudwatch").list_metrics(Namespace="Panoptes/App")
        assert [m["MetricName"] for m in metrics["Metrics"]] == ["frames"]
        assert fetches  # the app's credentials came from the provider
