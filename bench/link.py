"""Device reports through the link against the database floor.

    .venv/bin/python bench/link.py [--reports N] [--brokers embedded,mosquitto]

For each broker (embedded amqtt; a Mosquitto started with `panoptes broker-config`'s
TLS setup) this runs the control plane on SQLite with its link, provisions one
device through the real exchange route and times N heartbeats published by that
device (QoS 1, TLS) until the bridge has applied the last one. The floor is the same
N heartbeats applied by calling DeviceView.heartbeat directly (no MQTT): the database
work the bridge cannot avoid. Prints reports/s and link/floor ratios, plus the time
from CreateApplicationInstance's answer to the device receiving the desired state
(notify hook path). It never asserts times.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests/cloud/channel", "tests/cloud", "tests"):
    sys.path.insert(0, str(ROOT / folder))

from api_helpers import deploy_params, publish_sample_app  # noqa: E402
from link_support import link_stack  # noqa: E402

from panoptes import link  # noqa: E402


def floor(ls, device_id: str, n: int) -> float:  # type: ignore[no-untyped-def]
    view = ls.api.view
    start = time.perf_counter()
    for i in range(n):
        view.heartbeat(device_id, datetime.now(UTC), current_software=f"1.0.{i}")
    return time.perf_counter() - start


def through_link(ls, n: int) -> float:  # type: ignore[no-untyped-def]
    device = ls.device(f"bench-{time.monotonic_ns()}")
    client = device.connect()
    last = f"2.0.{n - 1}"
    start = time.perf_counter()
    for i in range(n):
        report = {"Type": link.REPORT_HEARTBEAT, "CurrentSoftware": f"2.0.{i}"}
        client.publish(link.topic(device.id, link.REPORT), link.encode(report), qos=1)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with ls.api.server.backend.db.reading() as session:
            from panoptes.cloud.db.models import Device

            row = session.get(Device, device.id)
            if row is not None and row.current_software == last:
                break
        time.sleep(0.002)
    elapsed = time.perf_counter() - start
    device.close()
    return elapsed


def deployment_latency(ls, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    device = ls.device("bench-deploy")
    client = device.connect()
    device.online(client)
    publish_sample_app(ls.api)
    api = ls.api.client()
    times = []
    for _ in range(runs):
        device.desired(lambda s: True, "the current state")  # drain the retained one
        app = api.create_application_instance(**deploy_params(ls.api, device.id))
        answered = time.perf_counter()
        instance = app["ApplicationInstanceId"]
        device.desired(
            lambda s, i=instance: any(
                a["ApplicationInstanceId"] == i for a in s["ApplicationInstances"]
            ),
            "the deployment",
        )
        times.append(time.perf_counter() - answered)
        api.remove_application_instance(ApplicationInstanceId=instance)
    device.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reports", type=int, default=500)
    parser.add_argument("--brokers", default="embedded,mosquitto")
    args = parser.parse_args()
    for kind in args.brokers.split(","):
        with tempfile.TemporaryDirectory() as tmp, link_stack("sqlite", kind, Path(tmp)) as ls:
            probe = ls.device("bench-floor")
            base = floor(ls, probe.id, args.reports)
            linked = through_link(ls, args.reports)
            deploys = deployment_latency(ls, 5)
        n = args.reports
        print(
            f"{kind:10s} floor {n / base:7.0f} reports/s | link {n / linked:7.0f} reports/s | "
            f"link/floor time ratio {linked / base:5.2f} | deployment -> device "
            f"median {statistics.median(deploys) * 1000:6.1f} ms"
        )


if __name__ == "__main__":
    main()
