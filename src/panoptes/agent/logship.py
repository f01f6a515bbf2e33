"""Log shipping: node stream files and the agent's own streams -> link LogBatches.

The runtime writes one file per log stream under ``<output_dir>/logs/``
(``console_output.log``, ``<node>.log`` for code, model and camera nodes);
`LogShipper.watch()` tails every ``*.log`` there (stream = file stem) into the
instance's log group, and `add()` takes the agent's own lines (``ota_log``,
``occ_log``, ... in the device group). Lines become CloudWatch-shaped events; every
``batch_interval`` the events of each stream are cut into `LogBatch` messages
(panoptes.link) and handed to ``publish``.

Every batch goes to the spool on disk first, together with the file offsets it
reaches, and leaves it only once ``publish`` returned True; so a batch is sent
again after a crash with the SAME Sequence (the control plane drops what it has),
and a restarted shipper resumes each file where the last spooled batch ended:
no line is lost or shipped twice across restarts (lines read in the last
``batch_interval`` before a crash are read again). While ``publish`` returns False
(offline) batches accumulate in the spool; past ``max_spool_bytes`` the OLDEST are
deleted and their events counted: a warning is logged, a line starting with
GAP_NOTE is put in each stream where the gap is, and the count travels in the
``Dropped`` of the next batch (the one carrying that line, at the latest).

Sequence numbers increase per device across restarts: each is at least the
current time in milliseconds, so they keep increasing even if the spool directory
is lost. Files are followed through rotation (renamed away: the old file is read
to its end first) and truncation (read again from the start); blank lines are not
shipped (CloudWatch refuses empty events); a line longer than MAX_EVENT_BYTES is
cut into several events at UTF-8 character boundaries.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from panoptes.project.files import atomic_write_bytes

log = logging.getLogger("panoptes.agent.logship")

# CloudWatch Logs limits: an event is at most 256 KiB counting 26 bytes of overhead;
# a PutLogEvents batch at most 1 MiB (same accounting) and 10,000 events.
EVENT_OVERHEAD = 26
MAX_EVENT_BYTES = 256 * 1024 - EVENT_OVERHEAD
MAX_BATCH_BYTES = 1024 * 1024
MAX_BATCH_EVENTS = 10_000
DEFAULT_SPOOL_BYTES = 64 * 1024 * 1024
_READ_CHUNK = 1 << 20  # per file per poll: one busy stream cannot starve the others
#: Starts the line put in a stream where the spool dropped some of its events.
GAP_NOTE = "panoptes: log events dropped here: "


def _utf8_cut(data: bytes, limit: int) -> int:
    """The largest cut <= ``limit`` that does not fall inside a UTF-8 character."""
    cut = limit
    while cut > 0 and (data[cut] & 0xC0) == 0x80:  # a continuation byte
        cut -= 1
    return cut or limit  # not UTF-8 at all: cut anywhere


def _gap_count(message: str) -> int | None:
    """The count of a gap note; None for any other message."""
    if message.startswith(GAP_NOTE):
        with contextlib.suppress(ValueError, IndexError):
            return int(message[len(GAP_NOTE) :].split()[0])
    return None


def split_message(text: str, limit: int = MAX_EVENT_BYTES) -> list[str]:
    """``text`` in pieces of at most ``limit`` UTF-8 bytes, cut between characters."""
    data = text.encode()
    pieces = []
    while len(data) > limit:
        cut = _utf8_cut(data, limit)
        pieces.append(data[:cut].decode())
        data = data[cut:]
    if data:
        pieces.append(data.decode())
    return pieces


@dataclass
class _Tail:
    """One watched file: where we are in it (``offset`` = bytes shipped or spooled)."""

    path: Path
    group: str
    stream: str
    f: BinaryIO | None = None
    ino: tuple[int, int] | None = None  # (st_dev, st_ino) of the open file
    offset: int = 0
    partial: bytes = b""  # read past ``offset``: the start of a line not finished yet

    def close(self) -> None:
        if self.f is not None:
            self.f.close()
            self.f = None


@dataclass
class _Segment:
    """One spool file: the batches cut in one go, and how many of them were published."""

    path: Path
    batches: list[dict[str, Any]]
    size: int
    sent: int = 0

    def unsent(self) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]], int]:
        """What dropping this segment loses: log events per (group, stream), the counts
        of the gap notes in it per (group, stream), and the earlier drops its batches
        were to report in Dropped."""
        events: Counter[tuple[str, str]] = Counter()
        notes: Counter[tuple[str, str]] = Counter()
        for b in self.batches[self.sent :]:
            for e in b["Events"]:
                if (n := _gap_count(e["message"])) is None:
                    events[b["Group"], b["Stream"]] += 1
                else:
                    notes[b["Group"], b["Stream"]] += n
        return events, notes, sum(b["Dropped"] for b in self.batches[self.sent :])


@dataclass
class _Pending:
    events: list[dict[str, Any]] = field(default_factory=list)
    size: int = 0


class LogShipper:
    """Tails stream files and takes the agent's own lines; ships them as LogBatches.

    ``publish(batch)`` sends one LogBatch (a dict, see panoptes.link) and returns True
    once the control plane's broker has it, False when it could not (offline).
    It is called from the shipper's thread, one batch at a time, in Sequence order.
    """

    def __init__(
        self,
        spool_dir: Path,
        publish: Callable[[dict[str, Any]], bool],
        max_spool_bytes: int = DEFAULT_SPOOL_BYTES,
        *,
        batch_interval: float = 1.0,
        poll_interval: float = 0.2,
        retry_interval: float = 2.0,
    ) -> None:
        self.spool_dir = Path(spool_dir)
        self.publish = publish
        self.max_spool_bytes = max_spool_bytes
        self.batch_interval = batch_interval
        self.poll_interval = poll_interval
        self.retry_interval = retry_interval
        self.dropped_total = 0  # events dropped by this process (for tests and status)
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._watches: dict[Path, str] = {}
        self._tails: dict[Path, _Tail] = {}
        self._pending: dict[tuple[str, str], _Pending] = {}
        self._segments: list[_Segment] = []
        self._next_sequence = 0
        self._dropped = 0  # dropped and not yet reported in a batch
        self._offsets: dict[str, list[int]] = {}  # path -> [st_dev, st_ino, offset]
        self._last_cut = time.monotonic()
        self._retry_at = 0.0
        self._flush_asked = 0  # flush() calls so far
        self._flush_done = 0  # flush() calls whose reads were cut into the spool
        self._saved_state = b""
        self._closed = False
        (self.spool_dir / "batches").mkdir(parents=True, exist_ok=True)
        self._load()
        self._thread = threading.Thread(target=self._loop, name="logship", daemon=True)
        self._thread.start()

    # -- public ---------------------------------------------------------------------------

    def watch(self, directory: Path, group: str) -> None:
        """Ship every ``*.log`` in ``directory`` (now or later) to ``group``; the
        stream is the file's stem. Files already shipped resume at their offsets."""
        with self._lock:
            self._watches[Path(directory).resolve()] = group
            self._wake.notify_all()

    def unwatch(self, directory: Path) -> None:
        """Ship what is left in ``directory``'s files, then forget them (the instance
        is gone: its offsets are dropped too)."""
        directory = Path(directory).resolve()
        with self._lock:
            self._poll_files()  # files that appeared since the last poll too
            self._watches.pop(directory, None)
            for path in [p for p in self._tails if p.parent == directory]:
                tail = self._tails.pop(path)
                self._read(tail, final=True)
                tail.close()
                self._offsets.pop(str(path), None)
            self._wake.notify_all()

    def add(self, group: str, stream: str, message: str, timestamp_ms: int | None = None) -> None:
        """One line of the agent's own streams (e.g. link.device_log_group(id), "ota_log")."""
        ts = int(time.time() * 1000) if timestamp_ms is None else timestamp_ms
        with self._lock:
            for piece in split_message(message.rstrip("\r\n")):
                self._event(group, stream, ts, piece)

    def flush(self, timeout: float) -> bool:
        """Cut and publish everything read so far; True when nothing is left unsent
        within ``timeout`` (False while offline)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            self._flush_asked += 1
            asked = self._flush_asked
            self._retry_at = 0.0
            self._wake.notify_all()
            while self._flush_done < asked or self._pending or self._segments:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    return False
                self._wake.wait(min(left, 0.1))
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop: everything read is spooled (sent now if possible, else at next start)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._wake.notify_all()
        self._thread.join(timeout)
        with self._lock:
            for tail in self._tails.values():
                tail.close()

    @property
    def spooled_bytes(self) -> int:
        with self._lock:
            return sum(s.size for s in self._segments)

    # -- the loop -------------------------------------------------------------------------

    def _loop(self) -> None:
        while True:
            with self._lock:
                closing, asked = self._closed, self._flush_asked
                try:
                    self._poll_files()
                    due = time.monotonic() - self._last_cut >= self.batch_interval
                    flushing = asked > self._flush_done
                    if due or flushing or closing or self._pending_bytes() > MAX_BATCH_BYTES:
                        self._cut()
                        self._flush_done = asked
                except Exception:
                    log.exception("log shipping")
            self._send()
            with self._lock:
                if closing:
                    return
                self._wake.notify_all()
                if self._flush_asked == asked:
                    self._wake.wait(self.poll_interval)

    def _poll_files(self) -> None:
        for directory, group in list(self._watches.items()):
            with contextlib.suppress(FileNotFoundError):
                for path in directory.glob("*.log"):
                    if path not in self._tails:
                        self._tails[path] = _Tail(path, group, path.stem)
        for tail in list(self._tails.values()):
            self._read(tail)

    def _read(self, tail: _Tail, final: bool = False) -> None:
        if tail.f is None:
            try:
                self._open(tail)
            except FileNotFoundError:
                return  # not there (yet)
        assert tail.f is not None
        self._drain(tail)
        # Look at the name only after reading: a file that grew meanwhile must not look
        # truncated (its size can only be below our position if it really was).
        try:
            st: os.stat_result | None = os.stat(tail.path)
        except FileNotFoundError:
            st = None
        now = os.fstat(tail.f.fileno())
        if st is None and not final:
            pass  # renamed away, no new file yet: keep reading the old one
        elif st is None or (st.st_dev, st.st_ino) != (now.st_dev, now.st_ino):
            while self._drain(tail):  # rotated: read the old file to its end
                pass
            self._finish_partial(tail)
            tail.close()
            if st is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._open(tail, start=0)
                    self._drain(tail)
        elif st.st_size < tail.f.tell():
            # Truncated in place (copytruncate): what follows is new.
            tail.f.seek(0)
            tail.offset, tail.partial = 0, b""
            self._drain(tail)
        if final:
            while tail.f is not None and self._drain(tail):
                pass
            self._finish_partial(tail)
        self._offsets[str(tail.path)] = [*tail.ino, tail.offset] if tail.ino else [0, 0, 0]

    def _open(self, tail: _Tail, start: int | None = None) -> None:
        tail.f = tail.path.open("rb")
        opened = os.fstat(tail.f.fileno())  # what we opened, if it changed since the stat
        tail.ino = (opened.st_dev, opened.st_ino)
        saved = self._offsets.get(str(tail.path))
        if start is None and saved and tuple(saved[:2]) == tail.ino and saved[2] <= opened.st_size:
            start = saved[2]  # the same file as when we stopped: resume there
        tail.offset, tail.partial = start or 0, b""
        tail.f.seek(tail.offset)

    def _drain(self, tail: _Tail) -> bool:
        """Read the next chunk into events; False at the end of the file."""
        assert tail.f is not None
        data = tail.f.read(_READ_CHUNK)
        if not data:
            return False
        buf = tail.partial + data
        start = 0
        while (end := buf.find(b"\n", start)) >= 0:
            self._line(tail, buf[start:end], end + 1 - start)
            start = end + 1
        rest = buf[start:]
        while len(rest) > MAX_EVENT_BYTES:  # a line that never ends: ship it in pieces
            cut = _utf8_cut(rest, MAX_EVENT_BYTES)
            self._line(tail, rest[:cut], cut)
            rest = rest[cut:]
        tail.partial = rest
        return True

    def _finish_partial(self, tail: _Tail) -> None:
        # The file ends without a newline and will not grow: its last line is complete.
        partial, tail.partial = tail.partial, b""
        if partial:
            self._line(tail, partial, len(partial))

    def _line(self, tail: _Tail, raw: bytes, consumed: int) -> None:
        tail.offset += consumed
        text = raw.decode(errors="replace").rstrip("\r")
        if text.strip():
            ts = int(time.time() * 1000)
            for piece in split_message(text):
                self._event(tail.group, tail.stream, ts, piece)

    def _event(self, group: str, stream: str, ts: int, message: str) -> None:
        pending = self._pending.setdefault((group, stream), _Pending())
        pending.events.append({"timestamp": ts, "message": message})
        pending.size += len(message.encode()) + EVENT_OVERHEAD

    def _pending_bytes(self) -> int:
        return sum(p.size for p in self._pending.values())

    # -- spool ----------------------------------------------------------------------------

    def _cut(self) -> None:
        """Pending events -> batches -> one spool segment (with the offsets reached)."""
        self._last_cut = time.monotonic()
        dropped = self._dropped
        batches = []
        for (group, stream), pending in self._pending.items():
            events = sorted(pending.events, key=lambda e: e["timestamp"])  # stable
            chunk: list[dict[str, Any]] = []
            size = 0
            for event in events:
                cost = len(event["message"].encode()) + EVENT_OVERHEAD
                if chunk and (size + cost > MAX_BATCH_BYTES or len(chunk) >= MAX_BATCH_EVENTS):
                    batches.append(self._batch(group, stream, chunk))
                    chunk, size = [], 0
                chunk.append(event)
                size += cost
            if chunk:
                batches.append(self._batch(group, stream, chunk))
        if batches:
            first = batches[0]["Sequence"]
            path = self.spool_dir / "batches" / f"{first:016d}.json"
            body = json.dumps(
                {"Batches": batches, "Offsets": self._offsets, "NextSequence": self._next_sequence},
                separators=(",", ":"),
            ).encode()
            try:
                atomic_write_bytes(path, body)
            except OSError:
                self._dropped = dropped  # the events stay pending: tried again next time
                raise
            self._pending.clear()
            self._segments.append(_Segment(path, batches, len(body)))
            self._bound_spool()
        self._save_state()

    def _batch(self, group: str, stream: str, events: list[dict[str, Any]]) -> dict[str, Any]:
        # At least the time in ms: increasing across restarts even without our state.
        sequence = max(self._next_sequence, int(time.time() * 1000))
        self._next_sequence = sequence + 1
        dropped, self._dropped = self._dropped, 0
        return {
            "Group": group,
            "Stream": stream,
            "Events": events,
            "Sequence": sequence,
            "Dropped": dropped,
        }

    def _bound_spool(self) -> None:
        total = sum(s.size for s in self._segments)
        lost: Counter[tuple[str, str]] = Counter()
        gaps: Counter[tuple[str, str]] = Counter()
        while total > self.max_spool_bytes and len(self._segments) > 1:
            oldest = self._segments.pop(0)
            total -= oldest.size
            events, notes, carried = oldest.unsent()
            lost += events
            gaps += events + notes  # a note dropped in turn: its count joins the new one
            self._dropped += events.total() + carried  # earlier drops must still count
            oldest.path.unlink(missing_ok=True)
        dropped = lost.total()
        ts = int(time.time() * 1000)
        for (group, stream), n in gaps.items():
            # Where the gap is, for whoever reads the stream; its batch carries Dropped.
            note = f"{n} older events of this stream (the device was offline and its "
            note += f"log spool reached {self.max_spool_bytes} bytes)"
            self._event(group, stream, ts, GAP_NOTE + note)
        if dropped:
            self.dropped_total += dropped
            log.warning(
                "log spool over %d bytes while offline: dropped the %d oldest events "
                "(%d so far); the next batch reports them",
                self.max_spool_bytes,
                dropped,
                self.dropped_total,
            )

    def _send(self) -> None:
        """Publish spooled batches in order until one is refused (then retry later)."""
        if time.monotonic() < self._retry_at:
            return
        while True:
            with self._lock:
                if not self._segments:
                    return
                segment = self._segments[0]
                batch = segment.batches[segment.sent]
            try:
                ok = self.publish(batch)
            except Exception:
                log.exception("publishing a log batch")
                ok = False
            with self._lock:
                if not ok:
                    self._retry_at = time.monotonic() + self.retry_interval
                    return
                if self._segments and self._segments[0] is segment:
                    segment.sent += 1
                    if segment.sent == len(segment.batches):
                        self._segments.pop(0)
                        segment.path.unlink(missing_ok=True)
                        self._wake.notify_all()

    def _state_path(self) -> Path:
        return self.spool_dir / "state.json"

    def _save_state(self) -> None:
        state = {
            "NextSequence": self._next_sequence,
            "Offsets": self._offsets,
            "Dropped": self._dropped,
        }
        body = json.dumps(state).encode()
        if body != self._saved_state:  # idle streams cost no disk writes
            atomic_write_bytes(self._state_path(), body)
            self._saved_state = body

    def _load(self) -> None:
        with contextlib.suppress(FileNotFoundError, ValueError):
            state = json.loads(self._state_path().read_text())
            self._next_sequence = int(state.get("NextSequence", 0))
            self._offsets = dict(state.get("Offsets") or {})
            self._dropped = int(state.get("Dropped", 0))
        for path in sorted((self.spool_dir / "batches").glob("*.json")):
            try:
                body = json.loads(path.read_bytes())
            except ValueError:
                log.warning("unreadable log spool file %s: removed", path)
                path.unlink(missing_ok=True)
                continue
            self._segments.append(_Segment(path, body["Batches"], path.stat().st_size))
            if body["NextSequence"] > self._next_sequence:
                # Spooled just before a crash, after the last state was saved.
                self._next_sequence = body["NextSequence"]
                self._offsets = body["Offsets"]
