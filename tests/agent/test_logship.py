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
from serve_support import free_port

GROUP = link.instance_log_group("device-1", "applicationInstance-1")
WAIT = 60.0
MOSQUITTO = "/usr/sbin/mosquitto"

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


class Broker:
    """Our own Mosquitto on a free port, which a test can stop and start again."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.conf = folder / "mosquitto.conf"
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", self.port)) == 0

        wait_until("Mosquitto to listen", listening)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(WAIT)
            self.proc = None


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if not Path(MOSQUITTO).exists():
        pytest.skip(f"{MOSQUITTO} is not installed")
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


class Link:
    """The two MQTT ends: the agent's publish callable and the control plane's
    subscriber, which keeps each Sequence once (as the control plane does)."""

    def __init__(self, broker: Broker, device: str) -> None:
        import paho.mqtt.client as mqtt

        self.topic = link.topic(device, link.LOGS)
        self.batches: dict[int, dict[str, Any]] = {}
        self.topics: set[str] = set()
        self.ready = threading.Event()  # the control plane is subscribed
        self.clients = []
        for name in (f"{device}-cloud", device):
            c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name)
            c.reconnect_delay_set(0.05, 0.5)
            c.connect("127.0.0.1", broker.port)
            self.clients.append(c)
        self.cloud, self.agent = self.clients
        self.cloud.on_connect = lambda c, *a: c.subscribe(link.topic("+", link.LOGS), qos=1)
        self.cloud.on_subscribe = lambda *a: self.ready.set()
        self.cloud.on_disconnect = lambda *a: self.ready.clear()
        self.cloud.on_message = self._received
        for c in self.clients:
            c.loop_start()

    def _received(self, client: Any, userdata: Any, message: Any) -> None:
        batch = link.decode(message.payload)
        assert set(batch) == {"Group", "Stream", "Events", "Sequence", "Dropped"}
        assert all(set(e) == {"timestamp", "message"} for e in batch["Events"])
        self.topics.add(message.topic)
        self.batches.setdefault(batch["Sequence"], batch)

    def publish(self, batch: dict[str, Any]) -> bool:
        if not (self.agent.is_connected() and self.ready.is_set()):
            return False
        info = self.agent.publish(self.topic, link.encode(batch), qos=1)
        try:
            info.wait_for_publish(5)
        except (RuntimeError, ValueError):
            return False
        return info.is_published()

    def messages(self, stream: str) -> list[str]:
        ordered = [self.batches[k] for k in sorted(self.batches)]
        return [e["message"] for b in ordered if b["Stream"] == stream for e in b["Events"]]

    def close(self) -> None:
        for c in self.clients:
            c.disconnect()
            c.loop_stop()


def test_batches_travel_as_link_messages_through_a_real_broker(
    logs: Path, tmp_path: Path, broker: Broker
) -> None:
    device = "device-logship"
    mqtt_link = Link(broker, device)
    shipper = LogShipper(tmp_path / "spool", mqtt_link.publish, batch_interval=0.05)
    try:
        assert mqtt_link.ready.wait(WAIT)
        shipper.watch(logs, GROUP)
        written = write_lines(logs, 50, ["code_node"])
        shipper.add(link.device_log_group(device), "occ_log", "agent connected")
        assert shipper.flush(WAIT)
        wait_until("the batches", lambda: len(mqtt_link.messages("code_node")) == 50)
    finally:
        shipper.close()
        mqtt_link.close()
    assert mqtt_link.topics == {link.topic(device, link.LOGS)}
    assert mqtt_link.messages("code_node") == written
    assert mqtt_link.messages("occ_log") == ["agent connected"]
    groups = {b["Stream"]: b["Group"] for b in mqtt_link.batches.values()}
    assert groups == {"code_node": GROUP, "occ_log": link.device_log_group(device)}


# The application: writes a numbered line every few milliseconds until told to stop.
APP = r"""
import os, sys, time
path, stop = sys.argv[1], sys.argv[2]
with open(path, "a") as f:
    i = 0
    while not os.path.exists(stop):
        f.write(f"frame {i}\n"); f.flush(); i += 1
        time.sleep(0.005)
    f.write(f"stopped after {i}\n")
"""


def test_logs_written_while_the_broker_is_down_arrive_when_it_is_back(
    logs: Path, tmp_path: Path, broker: Broker
) -> None:
    mqtt_link = Link(broker, "device-outage")
    shipper = LogShipper(
        tmp_path / "spool", mqtt_link.publish, batch_interval=0.1, retry_interval=0.1
    )
    stop = tmp_path / "stop"
    app = subprocess.Popen([sys.executable, "-c", APP, str(logs / "code_node.log"), str(stop)])
    try:
        assert mqtt_link.ready.wait(WAIT)
        shipper.watch(logs, GROUP)
        wait_until("lines online", lambda: len(mqtt_link.messages("code_node")) > 20)
        broker.stop()  # the control plane is gone; the application goes on
        before = len(mqtt_link.messages("code_node"))
        wait_until("the spool to fill", lambda: shipper.spooled_bytes > 20_000)
        assert app.poll() is None and len(mqtt_link.messages("code_node")) == before
        broker.start()
        wait_until("the spool to drain", lambda: shipper.spooled_bytes == 0)
        stop.touch()
        assert app.wait(WAIT) == 0
        assert shipper.flush(WAIT)
        wait_until(
            "the last line",
            lambda: any(m.startswith("stopped after") for m in mqtt_link.messages("code_node")),
        )
    finally:
        stop.touch()
        app.wait(WAIT)
        shipper.close()
        mqtt_link.close()
    got = mqtt_link.messages("code_node")
    count = int(got[-1].split()[-1])
    assert got == [f"frame {i}" for i in range(count)] + [f"stopped after {count}"]
    assert all(b["Dropped"] == 0 for b in mqtt_link.batches.values())


# The agent, reduced to its shipper: publishes every batch by appending it to a file.
AGENT = r"""
import json, os, sys, time
from pathlib import Path
from panoptes.agent.logship import LogShipper
spool, logs, out, group = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]

def publish(batch):
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, (json.dumps(batch) + "\n").encode())  # one write: whole or not at all
    os.close(fd)
    return True

shipper = LogShipper(spool, publish, batch_interval=0.02, poll_interval=0.01)
shipper.watch(logs, group)
time.sleep(3600)
"""


def test_an_agent_killed_mid_stream_loses_and_repeats_nothing(logs: Path, tmp_path: Path) -> None:
    out = tmp_path / "published.jsonl"
    stop = tmp_path / "stop"
    argv = [sys.executable, "-c", AGENT, str(tmp_path / "spool"), str(logs), str(out), GROUP]
    app = subprocess.Popen([sys.executable, "-c", APP, str(logs / "code_node.log"), str(stop)])

    def published() -> list[dict[str, Any]]:
        text = out.read_text() if out.exists() else ""
        return [json.loads(line) for line in text.splitlines()]

    try:
        for _ in range(3):  # kill -9 while lines flow, three times
            agent = subprocess.Popen(argv)
            count = len(published())
            wait_until("new batches", lambda count=count: len(published()) > count + 5)
            agent.kill()
            agent.wait(WAIT)
        stop.touch()
        assert app.wait(WAIT) == 0
        agent = subprocess.Popen(argv)
        wait_until(
            "the last line",
            lambda: any(
                e["message"].startswith("stopped after") for b in published() for e in b["Events"]
            ),
        )
        agent.kill()
        agent.wait(WAIT)
    finally:
        stop.touch()
        app.wait(WAIT)
    stored: dict[int, dict[str, Any]] = {}
    for batch in published():  # the control plane keeps each Sequence once
        stored.setdefault(batch["Sequence"], batch)
    got = [e["message"] for s in sorted(stored) for e in stored[s]["Events"]]
    count = int(got[-1].split()[-1])
    assert got == [f"frame {i}" for i in range(count)] + [f"stopped after {count}"]
