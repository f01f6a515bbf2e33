"""Deployment time against the local floor, and the control plane's cost per device.

    .venv/bin/python bench/deploy.py [--runs 3] [--devices 100] [--seconds 20]

1. Deploy. A control plane with its device link (SQLite, embedded broker) in this
   process, a real `panoptes agent` process provisioned through the API, the test
   camera, and the demo application (panoptes.demo) published through the API. Timed:
   CreateApplicationInstance → DEPLOYMENT_SUCCEEDED, and → the first output frame
   (the runtime's sink.json on the device). Floor: the same project started with
   panoptes.runtime directly, as `panoptes app run` does, until its first output
   frame. Both warm: the model is compiled once before timing. Target: ≤ 1.5x.
2. Heartbeat load. N devices (provisioned through the real exchange) connect over
   TLS from a child process and heartbeat every second (ten times the agent's rate);
   the control plane's CPU time (this process: broker, bridge, database) is divided
   by the reports it applied, and scaled to 1,000 devices at the agent's real rate
   (one heartbeat per link.HEARTBEAT_SECONDS).

Prints figures and ratios; never asserts times.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests/cloud/channel", "tests/cloud", "tests"):
    sys.path.insert(0, str(ROOT / folder))

from link_support import link_stack, make_device  # noqa: E402

from panoptes import link  # noqa: E402
from panoptes.demo.deploy import compact, overrides  # noqa: E402
from panoptes.demo.project import graph_path, make_demo_project  # noqa: E402
from panoptes.media.testcamera import CameraServer  # noqa: E402
from panoptes.project.package_app import Clients, package_application  # noqa: E402


def wait_for(check, timeout: float = 300.0, poll: float = 0.05):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError("gave up waiting")


def frames(workdir: Path) -> int:
    try:
        return int(json.loads((workdir / "sink.json").read_text()).get("frames", 0))
    except (OSError, ValueError):
        return 0


# --- 1. deploy vs the floor -------------------------------------------------------------


def floor_run(project, camera_url: str, tmp: Path, cache: Path) -> float:  # type: ignore[no-untyped-def]
    from panoptes.runtime import Runtime, make_plan
    from panoptes.spec import resolve

    start = time.perf_counter()
    app = resolve(graph_path(project), None, project.packages_dir, deployment=False)
    plan = make_plan(app, project.root, {"camera_node": [camera_url]})
    work = Path(tempfile.mkdtemp(dir=tmp))
    rt = Runtime(plan, work, mjpeg_port=None, mp4=False, model_cache=cache).start()
    try:
        wait_for(lambda: frames(rt.workdir) >= 1)
        return time.perf_counter() - start
    finally:
        rt.stop()


def deploy_run(ls, clients: Clients, device_id: str, account: str, project, camera_url: str,
               agent_dir: Path) -> tuple[float, float]:  # type: ignore[no-untyped-def]  # fmt: skip
    api = clients.panorama
    ov = json.loads(json.dumps(overrides(account)))
    start = time.perf_counter()
    iid = api.create_application_instance(
        Name="bench",
        DefaultRuntimeContextDevice=device_id,
        ManifestPayload={"PayloadData": compact(graph_path(project).read_text())},
        ManifestOverridesPayload={"PayloadData": json.dumps(ov)},
    )["ApplicationInstanceId"]

    def succeeded() -> bool:
        desc = api.describe_application_instance(ApplicationInstanceId=iid)
        if desc["Status"] == "DEPLOYMENT_FAILED":
            raise RuntimeError(desc.get("StatusDescription"))
        return desc["Status"] == "DEPLOYMENT_SUCCEEDED"

    wait_for(succeeded, poll=0.02)
    t_succeeded = time.perf_counter() - start
    wait_for(lambda: frames(agent_dir / "instances" / iid) >= 1, poll=0.02)
    t_frame = time.perf_counter() - start
    api.remove_application_instance(ApplicationInstanceId=iid)
    wait_for(
        lambda: (
            api.describe_application_instance(ApplicationInstanceId=iid)["Status"]
            == "REMOVAL_SUCCEEDED"
        )
    )
    return t_succeeded, t_frame


def bench_deploy(runs: int, tmp: Path) -> None:
    with link_stack("sqlite", "embedded", tmp) as ls, CameraServer(path="bench") as cam:
        stack = ls.api
        clients = Clients(stack.client(), stack.s3(), stack.url, "bench")
        project = make_demo_project(tmp / "work", stack.account)
        package_application(project, clients, say=lambda _: None)
        from panoptes.demo.deploy import register_camera

        register_camera(clients, cam.url)
        out = clients.panorama.provision_device(Name="bench-device")
        agent_dir = tmp / "agent"
        agent_dir.mkdir()
        archive = agent_dir / "certificates.zip"
        archive.write_bytes(out["Certificates"])
        log = (tmp / "agent.log").open("w")
        agent = subprocess.Popen(
            [sys.executable, "-m", "panoptes", "agent", "--config", str(archive),
             "--data-dir", str(agent_dir)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            device_id = out["DeviceId"]
            wait_for(
                lambda: (
                    clients.panorama.describe_device(DeviceId=device_id).get(
                        "DeviceConnectionStatus"
                    )
                    == "ONLINE"
                ),
                timeout=120,
            )
            cache = tmp / "floor-cache"
            floor_run(project, cam.url, tmp, cache)  # warm: compile the model once
            deploy_run(ls, clients, device_id, stack.account, project, cam.url, agent_dir)
            floors, succeeded, first = [], [], []
            for _ in range(runs):
                floors.append(floor_run(project, cam.url, tmp, cache))
                s, f = deploy_run(ls, clients, device_id, stack.account, project, cam.url,
                                  agent_dir)  # fmt: skip
                succeeded.append(s)
                first.append(f)
        finally:
            agent.terminate()
            agent.wait(60)
            log.close()
    fl, su, fi = (statistics.median(v) for v in (floors, succeeded, first))
    print(f"floor (runtime start -> first output frame), median of {runs}: {fl:.2f} s")
    print(f"CreateApplicationInstance -> DEPLOYMENT_SUCCEEDED: {su:.2f} s ({su / fl:.2f}x)")
    print(f"CreateApplicationInstance -> first output frame: {fi:.2f} s ({fi / fl:.2f}x)")
    print("target: first output frame within 1.5x of the floor")


# --- 2. heartbeat load ------------------------------------------------------------------


def _heartbeats(devices: list[tuple[str, str, str]], ca: str, port: int, seconds: float,
                sent: multiprocessing.Value) -> None:  # type: ignore[type-arg]  # fmt: skip
    import paho.mqtt.client as mqtt

    clients = []
    for device_id, cert, key in devices:
        c = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=device_id, protocol=mqtt.MQTTv311
        )
        c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        c.connect("127.0.0.1", port)
        c.loop_start()
        clients.append((device_id, c))
    time.sleep(2.0)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        tick = time.monotonic()
        for device_id, c in clients:
            report = {"Type": link.REPORT_HEARTBEAT, "CurrentSoftware": "bench"}
            c.publish(link.topic(device_id, link.REPORT), link.encode(report), qos=1)
            with sent.get_lock():
                sent.value += 1
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    time.sleep(2.0)
    for _, c in clients:
        c.loop_stop()
        c.disconnect()


def bench_heartbeats(n: int, seconds: float, tmp: Path) -> None:
    with link_stack("sqlite", "embedded", tmp) as ls:
        devices = []
        for i in range(n):
            d = make_device(ls, f"sim-{i}")
            devices.append((d.id, str(d.cert), str(d.key)))
        spawn = multiprocessing.get_context("spawn")  # a clean child, no copied threads
        sent = spawn.Value("i", 0)
        proc = spawn.Process(
            target=_heartbeats, args=(devices, str(ls.ca), ls.broker_port, seconds, sent)
        )
        cpu0, wall0 = time.process_time(), time.monotonic()
        proc.start()
        proc.join(seconds + 120)
        cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    reports = sent.value
    per_report = cpu / max(1, reports)
    per_1000 = per_report * 1000 / link.HEARTBEAT_SECONDS
    print(f"{n} devices, {reports} heartbeats in {wall:.1f} s: control plane {cpu:.2f} CPU-s")
    print(
        f"CPU per heartbeat {per_report * 1000:.2f} ms -> 1,000 devices at one heartbeat per "
        f"{link.HEARTBEAT_SECONDS:.0f} s: {per_1000:.2f} cores"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--devices", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--skip", choices=("deploy", "heartbeats"), default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        if args.skip != "deploy":
            bench_deploy(args.runs, Path(tmp) / "deploy")
        if args.skip != "heartbeats":
            bench_heartbeats(args.devices, args.seconds, Path(tmp) / "load")


if __name__ == "__main__":
    main()
