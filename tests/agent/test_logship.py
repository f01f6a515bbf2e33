"""LogShipper with real files appended by real child processes.

``Cloud`` is the publish callable: it can be offline (returns False), and keeps the
batches it accepted, as the control plane's log store would (dropping a Sequence it
already has, as link.py says the control plane does).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from panoptes import link
from panoptes.agent.logship import (
    EVENT_OVERHEAD,
    GAP_NOTE,
    MAX_BATCH_BYTES,
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    LogShipper,
)

GROUP = link.instance_log_group("device-1", "applicationInstance-1")
WAIT = 60.0

# The child: appends ``count`` numbered lines to each named stream file in turn; with
# ``rotate_at`` it renames every file to <name>.log.1 there and goes on in a new file.
WRITER = r"""
import os, sys
folder, count, rotate_at, streams = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]
paths = {s: os.path.join(folder, s + ".log") for s in streams}
files = {s: open(p, "a") for s, p in paths.items()}
start = int(os.environ.get("FIRST", "0"))
for i in range(start, start + count):
    for s in streams:
        if i == rotate_at:
            files[s].close()
            os.replace(paths[s], paths[s] + ".1")
            files[s] = open(paths[s], "a")
        files[s].write(f"{s} line {i}\n")
        files[s].flush()
"""


def write_lines(
    folder: Path, count: int, streams: list[str], first: int = 0, rotate_at: int = -1
) -> list[str]:
    """Run the writer child to completion; returns what it wrote to streams[0]."""
    subprocess.run(
        [sys.executable, "-c", WRITER, str(folder), str(count), str(rotate_at), *streams],
        check=True,
        timeout=WAIT,
        env={**os.environ, "FIRST": str(first)},
    )
    return [f"{streams[0]} line {i}" for i in range(first, first + count)]


class Cloud:
    def __init__(self, online: bool = True) -> None:
        self.online = online
        self.batches: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    def publish(self, batch: dict[str, Any]) -> bool:
        link.decode(link.encode(batch))  # a valid link message
        with self.lock:
            if not self.online:
                return False
            if not any(b["Sequence"] == batch["Sequence"] for b in self.batches):
                self.batches.append(batch)
            return True

    def messages(self, stream: str) -> list[str]:
        return [e["message"] for b in self.batches if b["Stream"] == stream for e in b["Events"]]

    def dropped(self) -> int:
        return sum(b["Dropped"] for b in self.batches)


def wait_until(what: str, ready: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    folder = tmp_path / "output" / "logs"
    folder.mkdir(parents=True)
    return folder


@pytest.fixture
def shippers(tmp_path: Path) -> Iterator[Callable[..., LogShipper]]:
    made: list[LogShipper] = []

    def make(cloud: Cloud, **kwargs: Any) -> LogShipper:
        kwargs.setdefault("batch_interval", 0.05)
        kwargs.setdefault("poll_interval", 0.02)
        kwargs.setdefault("retry_interval", 0.05)
        shipper = LogShipper(tmp_path / "spool", cloud.publish, **kwargs)
        made.append(shipper)
        return shipper

    yield make
    for shipper in made:
        shipper.close()


def test_lines_written_while_offline_arrive_once_and_in_order(
    logs: Path, shippers: Callable[..., LogShipper]
) -> None:
    cloud = Cloud(online=False)
    shipper = shippers(cloud)
    shipper.watch(logs, GROUP)
    code = write_lines(logs, 400, ["code_node", "console_output"])
    assert not shipper.flush(0.5)  # offline: kept in the spool
    assert shipper.spooled_bytes > 0 and cloud.batches == []
    cloud.online = True
    assert shipper.flush(WAIT)
    assert cloud.messages("code_node") == code
    assert cloud.messages("console_output") == [
        m.replace("code_node", "console_output") for m in code
    ]
    sequences = [b["Sequence"] for b in cloud.batches]
    assert sequences == sorted(set(sequences))
    assert {b["Group"] for b in cloud.batches} == {GROUP} and cloud.dropped() == 0
    assert shipper.spooled_bytes == 0


def test_a_restarted_shipper_resumes_without_loss_or_duplicates(
    logs: Path, shippers: Callable[..., LogShipper]
) -> None:
    cloud = Cloud()
    first = shippers(cloud)
    first.watch(logs, GROUP)
    sent = write_lines(logs, 100, ["code_node"])
    assert first.flush(WAIT)
    # Offline when the agent stops: what it read stays in the spool.
    cloud.online = False
    spooled = write_lines(logs, 100, ["code_node"], first=100)
    assert not first.flush(0.5)
    first.close()
    # Written while no agent ran, with a last line that is not finished yet.
    unread = write_lines(logs, 100, ["code_node"], first=200)
    with (logs / "code_node.log").open("a") as f:
        f.write("an unfinished ")
    cloud.online = True
    second = shippers(cloud)
    second.watch(logs, GROUP)
    assert second.flush(WAIT)
    assert cloud.messages("code_node") == sent + spooled + unread
    with (logs / "code_node.log").open("a") as f:
        f.write("line\n")
    assert second.flush(WAIT)
    assert cloud.messages("code_node")[-1] == "an unfinished line"
    sequences = [b["Sequence"] for b in cloud.batches]
    assert sequences == sorted(set(sequences))


def test_the_spool_is_bounded_and_drops_the_oldest_with_a_count(
    logs: Path, shippers: Callable[..., LogShipper], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, "panoptes.agent.logship")
    cloud = Cloud(online=False)
    shipper = shippers(cloud, max_spool_bytes=8_000)
    shipper.watch(logs, GROUP)
    written: list[str] = []
    for round_ in range(10):  # several batches, so there is an oldest to drop
        written += write_lines(logs, 30, ["code_node"], first=30 * round_)
        assert not shipper.flush(0.2)
    assert shipper.spooled_bytes <= 8_000
    cloud.online = True
    assert shipper.flush(WAIT)
    got = [m for m in cloud.messages("code_node") if not m.startswith(GAP_NOTE)]
    lost = len(written) - len(got)
    assert lost > 0 and got == written[lost:]  # the newest survive, in order
    assert cloud.dropped() == lost == shipper.dropped_total
    notes = [m for m in cloud.messages("code_node") if m.startswith(GAP_NOTE)]
    assert notes and sum(int(n[len(GAP_NOTE) :].split()[0]) for n in notes) == lost
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("dropped the" in w and "oldest events" in w for w in warnings)


def test_rotation_and_truncation_are_followed(
    logs: Path, shippers: Callable[..., LogShipper]
) -> None:
    cloud = Cloud()
    shipper = shippers(cloud)
    shipper.watch(logs, GROUP)
    written = write_lines(logs, 100, ["code_node"])
    assert shipper.flush(WAIT)
    # One rotation in the middle of a burst: the old file is read to its end first.
    written += write_lines(logs, 100, ["code_node"], first=100, rotate_at=150)
    assert shipper.flush(WAIT)
    assert cloud.messages("code_node") == written
    assert (logs / "code_node.log.1").exists()  # a backup is not a stream
    assert {b["Stream"] for b in cloud.batches} == {"code_node"}
    # Truncated in place, then written again: the new lines, not the old offset.
    (logs / "code_node.log").write_text("")
    again = write_lines(logs, 3, ["code_node"], first=1000)
    assert shipper.flush(WAIT)
    assert cloud.messages("code_node") == written + again


def test_long_lines_are_split_into_events_under_the_cloudwatch_limit(
    logs: Path, shippers: Callable[..., LogShipper]
) -> None:
    cloud = Cloud()
    shipper = shippers(cloud)
    shipper.watch(logs, GROUP)
    long_line = "é" * 300_000  # 600,000 bytes of two-byte characters
    (logs / "code_node.log").write_text(long_line + "\n" + "short\n\n")
    device = link.device_log_group("device-1")
    shipper.add(device, "ota_log", "x" * (MAX_EVENT_BYTES + 10))
    assert shipper.flush(WAIT)
    events = cloud.messages("code_node")
    assert "".join(events[:-1]) == long_line and events[-1] == "short"  # no blank event
    assert all(len(m.encode()) <= MAX_EVENT_BYTES for m in events)
    assert [len(m) for m in cloud.messages("ota_log")] == [MAX_EVENT_BYTES, 10]
    for batch in cloud.batches:  # within PutLogEvents' limits, counted its way
        size = sum(len(e["message"].encode()) + EVENT_OVERHEAD for e in batch["Events"])
        assert size <= MAX_BATCH_BYTES and len(batch["Events"]) <= MAX_BATCH_EVENTS


def test_unwatch_ships_what_is_left_and_forgets_the_files(
    logs: Path, shippers: Callable[..., LogShipper]
) -> None:
    cloud = Cloud()
    shipper = shippers(cloud)
    shipper.watch(logs, GROUP)
    written = write_lines(logs, 10, ["mds"])
    with (logs / "mds.log").open("a") as f:
        f.write("last words without a newline")
    shipper.unwatch(logs)
    assert shipper.flush(WAIT)
    assert cloud.messages("mds") == [*written, "last words without a newline"]
    write_lines(logs, 10, ["mds"], first=10)
    assert shipper.flush(WAIT)
    state = json.loads((shipper.spool_dir / "state.json").read_text())
    assert len(cloud.messages("mds")) == 11 and state["Offsets"] == {}


def _mosquitto_up() -> bool:
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", 1883)) == 0


@pytest.mark.skipif(not _mosquitto_up(), reason="Mosquitto is not running on 127.0.0.1:1883")
def test_batches_travel_as_link_messages_through_a_real_broker(logs: Path, tmp_path: Path) -> None:
    import paho.mqtt.client as mqtt

    device = f"device-logship-{os.getpid()}"
    topic = link.topic(device, link.LOGS)
    received: list[tuple[str, dict[str, Any]]] = []
    subscribed = threading.Event()

    def client(name: str) -> mqtt.Client:
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
        c.connect("127.0.0.1", 1883)
        c.loop_start()
        return c

    listener = client(f"{device}-cloud")
    listener.on_message = lambda c, u, m: received.append((m.topic, link.decode(m.payload)))
    listener.on_subscribe = lambda *a: subscribed.set()
    listener.subscribe(link.topic("+", link.LOGS), qos=1)
    assert subscribed.wait(WAIT)
    agent = client(device)

    def publish(batch: dict[str, Any]) -> bool:
        if not agent.is_connected():
            return False
        info = agent.publish(topic, link.encode(batch), qos=1)
        info.wait_for_publish(10)
        return info.is_published()

    shipper = LogShipper(tmp_path / "spool", publish, batch_interval=0.05, poll_interval=0.02)
    try:
        shipper.watch(logs, GROUP)
        written = write_lines(logs, 50, ["code_node"])
        shipper.add(link.device_log_group(device), "occ_log", "agent connected")
        assert shipper.flush(WAIT)
        wait_until(
            "the batches to arrive", lambda: sum(len(b["Events"]) for _, b in received) >= 51
        )
    finally:
        shipper.close()
        for c in (agent, listener):
            c.loop_stop()
            c.disconnect()
    assert {link.parse_topic(t) for t, _ in received} == {(device, link.LOGS)}
    batches = [b for _, b in received]
    assert [
        e["message"] for b in batches if b["Stream"] == "code_node" for e in b["Events"]
    ] == written
    for b in batches:
        assert set(b) == {"Group", "Stream", "Events", "Sequence", "Dropped"}
        assert all(set(e) == {"timestamp", "message"} for e in b["Events"])
