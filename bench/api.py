"""Panorama API latency and throughput against the framework floor.

    .venv/bin/python bench/api.py [--requests N] [--concurrency C] [--db sqlite,postgresql]

For each database (SQLite in a temp data dir; PostgreSQL in a fresh database
``panoptes_api_bench_<random>`` on 127.0.0.1:5432, dropped afterwards) this seeds
100 devices and 1,000 application instances directly through
``PanoramaBackend.handle`` (no HTTP), then serves the full stack (``build_server``,
rate limits off) with ``uvicorn.run`` in a subprocess and times DescribeDevice and
ListApplicationInstances (first page, MaxResults 25 of 1,000) from a boto3 client.

The floor is a bare Starlette app serving the very same JSON bytes on the same
routes, run the same way (uvicorn in a subprocess); the same boto3 client calls it.
Requests are signed by botocore in BOTH cases (SigV4 signing and response parsing
are client costs that both sides pay); only Panoptes verifies the signature, so
verification is part of what the ratio measures. Prints p50/p99 (ms), throughput
(requests/s; sequential, and with C client threads) and Panoptes/floor ratios.
Target: p99 within 3x of the floor. It never asserts times.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "cloud"))
sys.path.insert(0, str(ROOT / "tests"))  # pg_support

DEVICES = 100
INSTANCES = 1_000


# --- the two servers (subprocess entry points) ------------------------------------


def serve_panoptes(data_dir: str, database: str, port: int) -> None:
    import uvicorn

    from panoptes.cloud.app import NO_LIMITS
    from panoptes.cloud.server import ServerConfig, build_server

    db = None if database == "-" else database
    config = ServerConfig(Path(data_dir), port=port, database=db, limits=NO_LIMITS)
    uvicorn.run(build_server(config).app, host="127.0.0.1", port=port, log_level="warning")


def serve_floor(bodies_file: str, port: int) -> None:
    """Starlette with the same routes, answering the recorded JSON bytes."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    bodies = json.loads(Path(bodies_file).read_text())

    async def device(_: Request) -> Response:
        return Response(bodies["device"], media_type="application/json")

    async def instances(_: Request) -> Response:
        return Response(bodies["instances"], media_type="application/json")

    app = Starlette(
        routes=[
            Route("/devices/{device_id}", device, methods=["GET"]),
            Route("/application-instances", instances, methods=["GET"]),
        ]
    )
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


def start(args: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, __file__, *args], env=dict(os.environ))
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return proc
        except urllib.error.HTTPError:
            return proc  # the floor has no /healthz: a 404 means it is up
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"server {args[0]} did not start") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


# --- seeding through the services layer ---------------------------------------------


def seed(stack: Any) -> str:
    """100 devices (online), 1,000 application instances of the guide's sample app."""
    from api_helpers import csr_pem, deploy_params, publish_sample_app, read_archive

    from panoptes.cloud.context import RequestContext

    publish_sample_app(stack)  # a handful of requests: packages and assets over S3
    backend, view = stack.server.backend, stack.view

    def call(operation: str, **params: Any) -> dict:
        ctx = RequestContext(stack.account, "us-east-1", stack.key_id, "admin")
        return backend.handle(operation, ctx, params)

    devices = []
    for i in range(DEVICES):
        out = call("ProvisionDevice", Name=f"bench-{i:03d}")
        files = read_archive(out["Certificates"])
        token = files["provisioning.json"]["ProvisioningCredential"]["Token"]
        view.exchange_provisioning_credential(token, csr_pem())
        view.heartbeat(out["DeviceId"], datetime.now(UTC), current_software="0.1.0")
        devices.append(out["DeviceId"])
    for i in range(INSTANCES):
        params = deploy_params(stack, devices[i % DEVICES], Name=f"app-{i:04d}")
        call("CreateApplicationInstance", **params)
    return devices[DEVICES // 2]


# --- measuring -------------------------------------------------------------------------


def measure(fn: Callable[[], Any], requests: int) -> dict[str, float]:
    for _ in range(min(50, requests)):  # warm up connections and caches
        fn()
    times = []
    start_all = time.perf_counter()
    for _ in range(requests):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    elapsed = time.perf_counter() - start_all
    times.sort()
    return {
        "p50": statistics.median(times) * 1000,
        "p99": times[min(len(times) - 1, int(len(times) * 0.99))] * 1000,
        "rps": requests / elapsed,
    }


def concurrent_rps(make: Callable[[], Callable[[], Any]], requests: int, threads: int) -> float:
    fns = [make() for _ in range(threads)]
    for fn in fns:
        fn()
    per = max(1, requests // threads)
    barrier = threading.Barrier(threads + 1)

    def worker(fn: Callable[[], Any]) -> None:
        barrier.wait()
        for _ in range(per):
            fn()

    pool = [threading.Thread(target=worker, args=(fn,)) for fn in fns]
    for t in pool:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    for t in pool:
        t.join()
    return per * threads / (time.perf_counter() - t0)


def raw_body(stack: Any, path: str) -> str:
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    request = AWSRequest(method="GET", url=stack.url + path)
    SigV4Auth(Credentials(stack.key_id, stack.secret), "panorama", "us-east-1").add_auth(request)
    prepared = request.prepare()
    raw = urllib.request.Request(prepared.url, headers=dict(prepared.headers.items()))
    with urllib.request.urlopen(raw) as response:
        return response.read().decode()


def run(kind: str, requests: int, threads: int) -> list[tuple[str, dict, dict, float, float]]:
    from api_helpers import free_port, running_stack

    from panoptes.cloud.services.quotas import Limits as Quotas
    from pg_support import fresh_pg_database

    quotas = replace(Quotas(), devices=DEVICES + 10, application_instances_per_device=20)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        ctx = fresh_pg_database() if kind == "postgresql" else None
        db_url = ctx.__enter__() if ctx else None
        try:
            t0 = time.perf_counter()
            with running_stack(kind, data, quotas=quotas, database=db_url) as stack:
                device = seed(stack)
                bodies = {
                    "device": raw_body(stack, f"/devices/{device}"),
                    "instances": raw_body(stack, "/application-instances"),
                }
                key_id, secret = stack.key_id, stack.secret
            print(
                f"[{kind}] seeded {DEVICES} devices, {INSTANCES} instances in "
                f"{time.perf_counter() - t0:.1f}s",
                flush=True,
            )
            (Path(tmp) / "bodies.json").write_text(json.dumps(bodies))
            p_port, f_port = free_port(), free_port()
            panoptes = start(["--serve-panoptes", str(data), db_url or "-", str(p_port)], p_port)
            floor = start(["--serve-floor", str(Path(tmp) / "bodies.json"), str(f_port)], f_port)
            try:
                results = compare(device, key_id, secret, p_port, f_port, requests, threads)
            finally:
                stop(panoptes)
                stop(floor)
        finally:
            if ctx:
                ctx.__exit__(None, None, None)
    return results


def compare(device, key_id, secret, p_port, f_port, requests, threads):
    from api_helpers import panorama_session
    from botocore.config import Config

    def client(port: int) -> Any:
        return panorama_session().client(
            "panorama",
            endpoint_url=f"http://127.0.0.1:{port}",
            region_name="us-east-1",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
        )

    ops = {
        "DescribeDevice": lambda c: lambda: c.describe_device(DeviceId=device),
        "ListApplicationInstances": lambda c: lambda: c.list_application_instances(),
    }
    out = []
    for name, bind in ops.items():
        real = measure(bind(client(p_port)), requests)
        floor = measure(bind(client(f_port)), requests)
        real_c = concurrent_rps(lambda b=bind: b(client(p_port)), requests, threads)
        floor_c = concurrent_rps(lambda b=bind: b(client(f_port)), requests, threads)
        out.append((name, real, floor, real_c, floor_c))
    return out


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-panoptes":
        serve_panoptes(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-floor":
        serve_floor(sys.argv[2], int(sys.argv[3]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="timed requests per case")
    parser.add_argument("--concurrency", type=int, default=4, help="client threads")
    parser.add_argument("--db", default="sqlite,postgresql")
    args = parser.parse_args()

    from pg_support import pg_available

    print(
        f"{DEVICES} devices, {INSTANCES} application instances; {args.requests} requests "
        f"per case; boto3 signs every request (floor and Panoptes alike)\n",
        flush=True,
    )
    rows = []
    for kind in args.db.split(","):
        if kind == "postgresql" and not pg_available():
            print("[postgresql] skipped: nothing on 127.0.0.1:5432")
            continue
        for name, real, floor, real_c, floor_c in run(kind, args.requests, args.concurrency):
            rows.append((kind, name, real, floor, real_c, floor_c))

    head = (
        f"{'db':<10} {'operation':<25} {'p50 ms':>7} {'floor':>6} {'p99 ms':>7} {'floor':>6} "
        f"{'p99 x':>6} {'req/s':>6} {'floor':>6} {'req/s@' + str(args.concurrency):>8} "
        f"{'floor':>6}"
    )
    print("\n" + head)
    print("-" * len(head))
    for kind, name, real, floor, real_c, floor_c in rows:
        ratio = real["p99"] / floor["p99"]
        print(
            f"{kind:<10} {name:<25} {real['p50']:7.2f} {floor['p50']:6.2f} "
            f"{real['p99']:7.2f} {floor['p99']:6.2f} {ratio:5.2f}x {real['rps']:6.0f} "
            f"{floor['rps']:6.0f} {real_c:8.0f} {floor_c:6.0f}"
        )
    print("\np99 ratio = Panoptes p99 / floor p99 (target: within 3x)")
    for kind, name, real, floor, *_ in rows:
        ratio = real["p99"] / floor["p99"]
        verdict = "within 3x" if ratio <= 3 else "OVER 3x"
        print(f"  {kind:<10} {name:<25} {ratio:5.2f}x  {verdict}")


if __name__ == "__main__":
    main()
