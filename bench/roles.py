"""What a role session costs per request, against a long-lived key on the same stack.

    .venv/bin/python bench/roles.py [--requests N]

Serves the stack (build_server on SQLite, in a thread) and times panorama
ListDevices and S3 PutObject signed by the admin key and by a role session whose
policy allows both (its lookup reads the session and the role's policies and
evaluates the policy). Rounds alternate admin and session so both see the same
machine load. Prints p50 per request and the session/admin ratio; never asserts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
for folder in ("tests", "tests/cloud", "tests/cloud/roles"):
    sys.path.insert(0, str(ROOT / folder))

from api_helpers import publish_sample_app, running_stack  # noqa: E402
from roles_support import (  # noqa: E402
    create_role,
    credentials_for,
    deploy,
    new_device,
    session_client,
    stack_client,
    statement,
)


def timed(call, n: int) -> list[float]:
    out = []
    for _ in range(n):
        start = time.perf_counter()
        call()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, running_stack("sqlite", Path(tmp)) as stack:
        publish_sample_app(stack)
        stack_client(stack, "s3").create_bucket(Bucket="bench")
        create_role(
            stack,
            "bench",
            statement("panorama:ListDevices"),
            statement("s3:PutObject", "arn:aws:s3:::bench/*"),
        )
        device = new_device(stack, "bench-appliance")
        creds = credentials_for(stack, device, deploy(stack, device, "bench"))
        clients = {
            "admin": (stack.client(), stack.s3()),
            "session": (
                session_client(stack, "panorama", creds),
                session_client(stack, "s3", creds),
            ),
        }
        calls = {
            "ListDevices": lambda c: c[0].list_devices,
            "PutObject": lambda c: lambda: c[1].put_object(Bucket="bench", Key="k", Body=b"x"),
        }
        for name, make in calls.items():
            samples: dict[str, list[float]] = {"admin": [], "session": []}
            for _ in range(5):  # alternate: both see the same load
                for who, pair in clients.items():
                    samples[who] += timed(make(pair), args.requests // 5)
            p50 = {who: statistics.median(s) * 1000 for who, s in samples.items()}
            print(
                f"{name:12s} p50 admin {p50['admin']:.2f} ms  session {p50['session']:.2f} ms  "
                f"ratio session/admin {p50['session'] / p50['admin']:.2f}"
            )


if __name__ == "__main__":
    main()
