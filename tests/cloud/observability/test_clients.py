"""Unchanged AWS clients against the real server: the sample app's metrics with boto3
1.24 (query) and the newest boto3 (cbor), the json protocol, gzip bodies, query error
codes, and the guide's view-logs.sh (`aws logs get-log-events`) after `panoptes env`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import botocore.session
import pytest
from api_helpers import REGION, Stack, deploy_params, provision, publish_sample_app, running_stack
from botocore.config import Config
from obs_support import legacy_endpoints

from panoptes.cloud.services.logs import ingest_batch
from panoptes.link import instance_log_group
from panoptes.settings import ServiceRecord
from serve_support import BIN, clean_env

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

#: The developer guide's application.py, as written (only the class around it is ours).
SAMPLE_PUT = '''
import sys, boto3

class Application:
    def __init__(self, device_id):
        self.device_id = device_id
        self.cloudwatch = boto3.resource('cloudwatch')

    def put_metric_data(self, metric_name, metric_value):
        """Sends a performance metric to CloudWatch."""
        namespace = 'AWSPanoramaApplication'
        dimension_name = 'Application Name'
        dimension_value = 'aws-panorama-sample'
        metric = self.cloudwatch.Metric(namespace, metric_name)
        metric.put_data(
            Namespace=namespace,
            MetricData=[{
                'MetricName': metric_name,
                'Value': metric_value,
                'Unit': 'Milliseconds',
                'Dimensions': [
                    {'Name': dimension_name, 'Value': dimension_value},
                    {'Name': 'Device ID', 'Value': self.device_id}
                ]
            }]
        )

app = Application(sys.argv[1])
for value in sys.argv[2:]:
    app.put_metric_data('AverageInferenceTime', float(value))
print(boto3.__version__, app.cloudwatch.meta.client.meta.service_model.protocol)
'''


def dims(device: str) -> list[dict[str, str]]:
    return [
        {"Name": "Application Name", "Value": "aws-panorama-sample"},
        {"Name": "Device ID", "Value": device},
    ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    data = tmp_path_factory.mktemp("data")
    with running_stack("sqlite", data) as running:
        ServiceRecord(running.url, REGION).write(data)  # what `panoptes serve` writes
        yield running


def app_env(stack: Stack, home: Path, **extra: str) -> dict[str, str]:
    """An application's environment: credentials and region; no endpoint in the code."""
    env = clean_env(home)
    env.update(
        AWS_ACCESS_KEY_ID=stack.key_id,
        AWS_SECRET_ACCESS_KEY=stack.secret,
        AWS_DEFAULT_REGION=REGION,
        **extra,
    )
    return env


def client(stack: Stack, service: str, **cfg: Any) -> Any:
    return boto3.client(
        service, endpoint_url=stack.url, region_name=REGION, aws_access_key_id=stack.key_id,
        aws_secret_access_key=stack.secret, config=Config(**cfg),
    )  # fmt: skip


def statistics(cw: Any, device: str) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return cw.get_metric_statistics(
        Namespace="AWSPanoramaApplication", MetricName="AverageInferenceTime",
        Dimensions=dims(device), StartTime=now - timedelta(minutes=10),
        EndTime=now + timedelta(minutes=1), Period=600, Statistics=["Average", "SampleCount"],
    )["Datapoints"]  # fmt: skip


def test_the_sample_apps_metric_with_boto3_1_24_and_the_newest(
    stack: Stack, boto3_1_24: Path, tmp_path: Path
) -> None:
    script = tmp_path / "application.py"
    script.write_text(SAMPLE_PUT)
    # boto3 1.24 has no AWS_ENDPOINT_URL: an endpoints.json on AWS_DATA_PATH routes it.
    legacy = legacy_endpoints(tmp_path / "data-path", stack.url, ("monitoring",))
    old = subprocess.run(
        [str(boto3_1_24), str(script), "device-old", "10", "30"],
        env=app_env(stack, tmp_path, AWS_DATA_PATH=str(legacy)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert old.returncode == 0, old.stderr
    version, protocol = old.stdout.split()
    assert version.startswith("1.24.") and protocol == "query"
    new = subprocess.run(
        [sys.executable, str(script), "device-new", "7"],
        env=app_env(stack, tmp_path, AWS_ENDPOINT_URL=stack.url),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert new.returncode == 0, new.stderr
    assert new.stdout.split()[1] == "smithy-rpc-v2-cbor"

    # Read back with the newest boto3 (cbor) ...
    cw = client(stack, "cloudwatch")
    ((old_point,), (new_point,)) = statistics(cw, "device-old"), statistics(cw, "device-new")
    assert (old_point["Average"], old_point["SampleCount"], old_point["Unit"]) == (
        20.0, 2.0, "Milliseconds",
    )  # fmt: skip
    assert (new_point["Average"], new_point["SampleCount"]) == (7.0, 1.0)
    # ... and with boto3 1.24 (query: XML answers).
    read = (
        "import boto3, datetime as d, json; n = d.datetime.now(d.timezone.utc)\n"
        "r = boto3.client('cloudwatch').get_metric_statistics(Namespace='AWSPanoramaApplication',"
        " MetricName='AverageInferenceTime', Dimensions=[{'Name': 'Application Name', 'Value':"
        " 'aws-panorama-sample'}, {'Name': 'Device ID', 'Value': 'device-new'}],"
        " StartTime=n - d.timedelta(minutes=10), EndTime=n + d.timedelta(minutes=1),"
        " Period=600, Statistics=['Maximum'])\n"
        "print(json.dumps([p['Maximum'] for p in r['Datapoints']]))"
    )
    back = subprocess.run(
        [str(boto3_1_24), "-c", read], env=app_env(stack, tmp_path, AWS_DATA_PATH=str(legacy)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout) == [7.0]


def test_query_errors_keep_their_codes_across_protocols(
    stack: Stack, boto3_1_24: Path, tmp_path: Path
) -> None:
    legacy = legacy_endpoints(tmp_path / "data-path", stack.url, ("monitoring",))
    code = (
        "import boto3\n"
        "try:\n"
        "    boto3.client('cloudwatch').put_metric_data(Namespace='AWS/EC2',"
        " MetricData=[{'MetricName': 'x', 'Value': 1.0}])\n"
        "except Exception as e:\n"
        "    print(e.response['Error']['Code'], e.response['ResponseMetadata']['HTTPStatusCode'])\n"
    )
    old = subprocess.run(
        [str(boto3_1_24), "-c", code], env=app_env(stack, tmp_path, AWS_DATA_PATH=str(legacy)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert old.stdout.split() == ["InvalidParameterValue", "400"], old.stderr
    cw = client(stack, "cloudwatch", parameter_validation=False)
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        cw.put_metric_data(Namespace="AWS/EC2", MetricData=[{"MetricName": "x", "Value": 1.0}])
    assert caught.value.response["Error"]["Code"] == "InvalidParameterValue"
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        cw.put_metric_data(Namespace="N", MetricData=[{"Value": 1.0}])
    assert caught.value.response["Error"]["Code"] == "MissingParameter"
    assert "MetricName" in caught.value.response["Error"]["Message"]


def test_the_json_protocol_and_gzip_bodies(stack: Stack, tmp_path: Path) -> None:
    # Some boto3 versions between 1.24 and today speak json to CloudWatch: a model that
    # lists only json makes today's botocore do the same.
    import botocore.loaders

    model = botocore.loaders.Loader().load_service_model("cloudwatch", "service-2")
    model["metadata"]["protocol"], model["metadata"]["protocols"] = "json", ["json"]
    folder = tmp_path / "models" / "cloudwatch" / model["metadata"]["apiVersion"]
    folder.mkdir(parents=True)
    (folder / "service-2.json").write_text(json.dumps(model))
    core = botocore.session.Session()
    core.get_component("data_loader").search_paths.insert(0, str(tmp_path / "models"))
    sent: list[dict[str, str]] = []
    cw = boto3.Session(botocore_session=core).client(
        "cloudwatch", endpoint_url=stack.url, region_name=REGION,
        aws_access_key_id=stack.key_id, aws_secret_access_key=stack.secret,
    )  # fmt: skip
    cw.meta.events.register("before-send", lambda request, **_: sent.append(dict(request.headers)))
    assert cw.meta.service_model.protocol == "json"
    # 1000 datums: more than botocore's 10 KiB threshold, so the body goes gzipped.
    data = [
        {"MetricName": "Frames", "Dimensions": [{"Name": "Device ID", "Value": "device-json"}],
         "Value": float(i % 10)}
        for i in range(1000)
    ]  # fmt: skip
    cw.put_metric_data(Namespace="AWSPanoramaApplication", MetricData=data)
    assert sent[-1]["X-Amz-Target"] == b"GraniteServiceVersion20100801.PutMetricData"
    assert sent[-1]["Content-Encoding"] == b"gzip"
    now = datetime.now(UTC)
    (point,) = cw.get_metric_statistics(
        Namespace="AWSPanoramaApplication", MetricName="Frames",
        Dimensions=[{"Name": "Device ID", "Value": "device-json"}],
        StartTime=now - timedelta(minutes=5), EndTime=now + timedelta(minutes=1), Period=600,
        Statistics=["Sum", "SampleCount"],
    )["Datapoints"]  # fmt: skip
    assert (point["SampleCount"], point["Sum"]) == (1000, 4500)
    listed = cw.list_metrics(Namespace="AWSPanoramaApplication", MetricName="Frames")["Metrics"]
    assert listed == [
        {"Namespace": "AWSPanoramaApplication", "MetricName": "Frames",
         "Dimensions": [{"Name": "Device ID", "Value": "device-json"}]}
    ]  # fmt: skip


@pytest.fixture(scope="module")
def app_logs(stack: Stack) -> str:
    """The sample app deployed on a device whose agent shipped its code_node lines."""
    publish_sample_app(stack)
    device = provision(stack, "my-appliance")
    panorama = stack.client()
    instance = panorama.create_application_instance(**deploy_params(stack, device))
    group = instance_log_group(device, instance["ApplicationInstanceId"])
    start = int(time.time() * 1000) - 5000
    lines = ["Loading model", "epoch length: 1.002 s (29.9 FPS)", "avg inference time: 12.5 ms"]
    sent = {
        "Group": group, "Stream": "code_node", "Sequence": 1, "Dropped": 0,
        "Events": [{"timestamp": start + i, "message": m} for i, m in enumerate(lines)],
    }  # fmt: skip
    assert ingest_batch(stack.server.backend.env, device, sent) == 3
    return group


def sh(script: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=clean_env(home), timeout=timeout
    )
    assert res.returncode == 0, f"{script}\n{res.stdout}\n{res.stderr}"
    return res


def test_view_logs_sh_shows_the_apps_lines(stack: Stack, app_logs: str, tmp_path: Path) -> None:
    data = stack.server.config.data_dir
    setup = f'eval "$(panoptes env --data-dir {data})"'
    # The guide's view-logs.sh, one iteration, without jq.
    res = sh(
        f"{setup} && {BIN / 'aws'} logs get-log-events --log-group-name {app_logs} "
        "--log-stream-name code_node --limit 150",
        tmp_path,
    )
    messages = [e["message"] for e in json.loads(res.stdout)["events"]]
    assert messages == [
        "Loading model", "epoch length: 1.002 s (29.9 FPS)", "avg inference time: 12.5 ms",
    ]  # fmt: skip
    groups = sh(f"{setup} && {BIN / 'aws'} logs describe-log-groups", tmp_path)
    assert app_logs in [g["logGroupName"] for g in json.loads(groups.stdout)["logGroups"]]


def test_panoptes_logs_tail_prints_and_follows(stack: Stack, app_logs: str, tmp_path: Path) -> None:
    data = str(stack.server.config.data_dir)
    tail = [sys.executable, "-m", "panoptes", "logs", "tail", app_logs, "--data-dir", data]
    once = subprocess.run(
        [*tail, "--stream", "code_node"], env=clean_env(tmp_path), capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert once.returncode == 0, once.stderr
    assert [line.split(" ", 1)[1] for line in once.stdout.splitlines()] == [
        "Loading model", "epoch length: 1.002 s (29.9 FPS)", "avg inference time: 12.5 ms",
    ]  # fmt: skip

    follower = subprocess.Popen(
        [*tail, "--follow", "--poll", "0.2"], env=clean_env(tmp_path), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        for _ in range(3):  # the three old lines, with the stream name
            assert " code_node " in follower.stdout.readline()
        device = app_logs.split("/")[4]
        late = {
            "Group": app_logs, "Stream": "console_output", "Sequence": 2,
            "Events": [{"timestamp": int(time.time() * 1000), "message": "Traceback: boom"}],
        }  # fmt: skip
        ingest_batch(stack.server.backend.env, device, late)
        # readline blocks until the line comes; the pytest timeout bounds a hang.
        assert follower.stdout.readline().rstrip().endswith("console_output Traceback: boom")
    finally:
        follower.terminate()
        follower.wait(timeout=10)


def test_logs_tail_of_a_missing_group_says_so(stack: Stack, tmp_path: Path) -> None:
    data = str(stack.server.config.data_dir)
    res = subprocess.run(
        [sys.executable, "-m", "panoptes", "logs", "tail", "/aws/nothing", "--data-dir", data],
        env=clean_env(tmp_path), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 1
    assert "The specified log group does not exist: /aws/nothing" in res.stderr


def test_prometheus_scrapes_with_the_token_from_the_data_dir(stack: Stack) -> None:
    import urllib.error
    import urllib.request

    from panoptes.cloud.services.metrics import DEVICE_ACTIVE, put_device_metric

    env = stack.server.backend.env
    put_device_metric(env, stack.account, DEVICE_ACTIVE, {"DeviceId": "d-1", "DeviceName": "n"}, 1)
    url = stack.url + "/_panoptes/metrics"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url, timeout=10)
    assert refused.value.code == 401
    token = (stack.server.config.data_dir / "prometheus-token").read_text().strip()
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        text = response.read().decode()
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    (line,) = [x for x in text.splitlines() if x.startswith("PanoramaDeviceMetrics_DeviceActive{")]
    assert f'account_id="{stack.account}"' in line and 'DeviceId="d-1"' in line
    mode = (stack.server.config.data_dir / "prometheus-token").stat().st_mode & 0o777
    assert mode == 0o600
