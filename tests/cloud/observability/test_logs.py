"""The log store: device batches in, the CloudWatch Logs subset out, limits enforced."""

from __future__ import annotations

from datetime import timedelta

import pytest
from obs_support import OTHER, World

from panoptes.cloud.services.logs import (
    LogBatchRejected,
    LogLimits,
    enforce_log_limits,
    ingest_batch,
)
from panoptes.link import device_log_group, instance_log_group


def ms(world: World, seconds: float = 0) -> int:
    return int((world.now + timedelta(seconds=seconds)).timestamp() * 1000)


def batch(group: str, stream: str, messages: list[str], sequence: int, start: int, **extra):
    events = [{"timestamp": start + i, "message": m} for i, m in enumerate(messages)]
    return {"Group": group, "Stream": stream, "Events": events, "Sequence": sequence, **extra}


def test_a_device_batch_lands_in_its_group_once(world: World) -> None:
    device = world.device()
    group = device_log_group(device)
    sent = batch(group, "occ_log", ["booted", "reconciling"], 1, ms(world))
    assert ingest_batch(world.env, device, sent) == 2
    assert ingest_batch(world.env, device, sent) == 0  # re-sent after a reconnect
    assert ingest_batch(world.env, device, {**sent, "Sequence": 2}) == 2

    groups = world.logs("DescribeLogGroups")["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    assert groups[0]["storedBytes"] == sum(len(m) + 26 for m in ["booted", "reconciling"]) * 2
    streams = world.logs("DescribeLogStreams", logGroupName=group)["logStreams"]
    assert [s["logStreamName"] for s in streams] == ["occ_log"]
    assert streams[0]["lastEventTimestamp"] == ms(world) + 1
    # Another account does not see the device's logs.
    assert world.logs("DescribeLogGroups", account=OTHER)["logGroups"] == []
    world.fails("ResourceNotFoundException", lambda op, **p: world.logs(op, account=OTHER, **p),
                "GetLogEvents", logGroupName=group, logStreamName="occ_log")  # fmt: skip


def test_a_line_with_a_nul_character_is_kept_with_a_replacement(world: World) -> None:
    """An app that prints binary junk: its lines still land (PostgreSQL stores no NUL)."""
    device = world.device()
    group = device_log_group(device)
    sent = batch(group, "occ_log", ["before", "bin\x00ary", "after"], 1, ms(world))
    assert ingest_batch(world.env, device, sent) == 3
    events = world.logs(
        "GetLogEvents", logGroupName=group, logStreamName="occ_log", startFromHead=True
    )["events"]
    assert [e["message"] for e in events] == ["before", "bin\ufffdary", "after"]


def test_an_application_group_must_be_one_of_the_devices_instances(world: World) -> None:
    device, other_device = world.device("a"), world.device("b")
    mine = world.instance(device)
    theirs = world.instance(other_device, name="their-app")
    good = batch(instance_log_group(device, mine), "code_node", ["hello"], 1, ms(world))
    assert ingest_batch(world.env, device, good) == 1

    for group in (
        instance_log_group(device, theirs),  # another device's instance
        device_log_group(other_device),  # another device's group
        "/aws/lambda/something",
    ):
        with pytest.raises(LogBatchRejected, match="may only write to"):
            ingest_batch(world.env, device, batch(group, "x", ["no"], 5, ms(world)))
    with pytest.raises(LogBatchRejected, match="no : or"):
        ingest_batch(world.env, device, {**good, "Stream": "code:node"})
    with pytest.raises(LogBatchRejected, match="not registered"):
        ingest_batch(world.env, "device-gone", good)
    with pytest.raises(LogBatchRejected, match="integer timestamp"):
        bad = {**good, "Sequence": 9, "Events": [{"timestamp": "soon", "message": "x"}]}
        ingest_batch(world.env, device, bad)


def test_dropped_events_are_written_into_the_stream(world: World) -> None:
    device = world.device()
    group = device_log_group(device)
    ingest_batch(world.env, device, batch(group, "syslog", ["after"], 1, ms(world), Dropped=42))
    events = world.logs("GetLogEvents", logGroupName=group, logStreamName="syslog")["events"]
    assert [e["message"] for e in events] == [
        "[panoptes] the device dropped 42 log events here (offline buffer full)",
        "after",
    ]


def _fill(world: World, count: int) -> str:
    device = world.device()
    group = device_log_group(device)
    lines = [f"line {i}" for i in range(count)]
    ingest_batch(world.env, device, batch(group, "code_node", lines, 1, ms(world, -600)))
    return group


def test_get_log_events_reads_the_tail_then_pages_with_tokens(world: World) -> None:
    group = _fill(world, 25)
    # view-logs.sh: the newest `--limit` events, oldest first.
    tail = world.logs("GetLogEvents", logGroupName=group, logStreamName="code_node", limit=10)
    assert [e["message"] for e in tail["events"]] == [f"line {i}" for i in range(15, 25)]

    # Backward from the tail until the same token comes back (the end).
    seen = [e["message"] for e in tail["events"]]
    token = tail["nextBackwardToken"]
    while True:
        page = world.logs(
            "GetLogEvents", logGroupName=group, logStreamName="code_node", limit=10, nextToken=token
        )
        seen = [e["message"] for e in page["events"]] + seen
        if page["nextBackwardToken"] == token:
            break
        token = page["nextBackwardToken"]
    assert seen == [f"line {i}" for i in range(25)]

    # From the head, forward, until the forward token repeats.
    got, token = [], None
    while True:
        params = {"startFromHead": True, "limit": 7} | ({"nextToken": token} if token else {})
        page = world.logs("GetLogEvents", logGroupName=group, logStreamName="code_node", **params)
        got += [e["message"] for e in page["events"]]
        if page["nextForwardToken"] == token:
            break
        token = page["nextForwardToken"]
    assert got == [f"line {i}" for i in range(25)]

    # A forward token handed out at the end picks up lines written later.
    device = group.rsplit("/", 1)[-1]
    ingest_batch(world.env, device, batch(group, "code_node", ["late"], 2, ms(world)))
    page = world.logs(
        "GetLogEvents", logGroupName=group, logStreamName="code_node", nextToken=token
    )
    assert [e["message"] for e in page["events"]] == ["late"]


def test_time_range_and_bad_tokens(world: World) -> None:
    group = _fill(world, 10)
    start = ms(world, -600)
    page = world.logs(
        "GetLogEvents", logGroupName=group, logStreamName="code_node",
        startTime=start + 3, endTime=start + 6, startFromHead=True,
    )  # fmt: skip
    assert [e["message"] for e in page["events"]] == ["line 3", "line 4", "line 5"]
    world.fails("InvalidParameterException", world.logs, "GetLogEvents",
                logGroupName=group, logStreamName="code_node", nextToken="garbage")  # fmt: skip
    world.fails("ResourceNotFoundException", world.logs, "GetLogEvents",
                logGroupName=group, logStreamName="nope")  # fmt: skip


def test_filter_log_events_terms(world: World) -> None:
    device = world.device()
    group = device_log_group(device)
    lines = [
        "INFO started",
        "ERROR camera lost",
        "ERROR model timeout",
        "WARN slow frame",
        "error lowercase is not ERROR's case",
    ]
    ingest_batch(world.env, device, batch(group, "code_node", lines, 1, ms(world, -60)))
    ingest_batch(world.env, device, batch(group, "model_node", ["ERROR in model"], 2, ms(world)))

    def matching(pattern: str, **extra) -> list[str]:
        out = world.logs("FilterLogEvents", logGroupName=group, filterPattern=pattern, **extra)
        return [e["message"] for e in out["events"]]

    assert matching("ERROR") == [
        "ERROR camera lost", "ERROR model timeout", "error lowercase is not ERROR's case",
        "ERROR in model",
    ]  # fmt: skip
    assert matching("ERROR model") == ["ERROR model timeout", "ERROR in model"]
    assert matching('"camera lost"') == ["ERROR camera lost"]
    assert matching("?WARN ?INFO") == ["INFO started", "WARN slow frame"]
    assert matching("ERROR -model") == ["ERROR camera lost", "error lowercase is not ERROR's case"]
    assert matching("ERROR", logStreamNames=["model_node"]) == ["ERROR in model"]
    err = world.fails("InvalidParameterException", world.logs, "FilterLogEvents",
                      logGroupName=group, filterPattern='{ $.level = "ERROR" }')  # fmt: skip
    assert "use terms" in err.message

    # Paging: limit 2, then the token; every match exactly once.
    got, token = [], None
    while True:
        extra = {"nextToken": token} if token else {}
        page = world.logs(
            "FilterLogEvents", logGroupName=group, filterPattern="ERROR", limit=2, **extra
        )
        got += [e["eventId"] for e in page["events"]]
        token = page.get("nextToken")
        if not token:
            break
    assert len(got) == len(set(got)) == 4


def test_put_log_events_through_the_api(world: World) -> None:
    world.logs("CreateLogGroup", logGroupName="/my/app")
    world.fails(
        "ResourceAlreadyExistsException", world.logs, "CreateLogGroup", logGroupName="/my/app"
    )
    one = [{"timestamp": ms(world), "message": "x"}]
    world.fails("ResourceNotFoundException", world.logs, "PutLogEvents",
                logGroupName="/my/app", logStreamName="s", logEvents=one)  # fmt: skip
    world.logs("CreateLogStream", logGroupName="/my/app", logStreamName="s")
    out = world.logs(
        "PutLogEvents", logGroupName="/my/app", logStreamName="s",
        logEvents=[
            {"timestamp": ms(world, -1), "message": "one"},
            {"timestamp": ms(world), "message": "two"},
            {"timestamp": ms(world, 3 * 3600), "message": "from the future"},
        ],
    )  # fmt: skip
    assert out["rejectedLogEventsInfo"] == {"tooNewLogEventStartIndex": 2}
    events = world.logs("GetLogEvents", logGroupName="/my/app", logStreamName="s")["events"]
    assert [e["message"] for e in events] == ["one", "two"]
    err = world.fails("InvalidParameterException", world.logs, "PutLogEvents",
                      logGroupName="/my/app", logStreamName="s",
                      logEvents=[{"timestamp": ms(world), "message": "b"},
                                 {"timestamp": ms(world, -5), "message": "a"}])  # fmt: skip
    assert "chronological" in err.message


def test_retention_and_size_limits_remove_the_oldest(world: World) -> None:
    device = world.device()
    group = device_log_group(device)
    old = [f"old {i}" for i in range(5)]
    ingest_batch(world.env, device, batch(group, "syslog", old, 1, ms(world, -3 * 86400)))
    new = [f"new {i}" for i in range(5)]
    ingest_batch(world.env, device, batch(group, "syslog", new, 2, ms(world)))
    world.logs("PutRetentionPolicy", logGroupName=group, retentionInDays=1)
    world.fails("InvalidParameterException", world.logs, "PutRetentionPolicy",
                logGroupName=group, retentionInDays=2)  # fmt: skip

    assert enforce_log_limits(world.env, world.now, LogLimits()) == 5
    events = world.logs("GetLogEvents", logGroupName=group, logStreamName="syslog")["events"]
    assert [e["message"] for e in events] == new

    # A cap of three events' worth keeps the newest three.
    cap = 3 * (len("new 0") + 26)
    assert enforce_log_limits(world.env, world.now, LogLimits(max_group_bytes=cap)) == 2
    events = world.logs("GetLogEvents", logGroupName=group, logStreamName="syslog")["events"]
    assert [e["message"] for e in events] == new[2:]
    (described,) = world.logs("DescribeLogGroups")["logGroups"]
    assert described["storedBytes"] == cap and described["retentionInDays"] == 1
