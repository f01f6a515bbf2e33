"""Every transition table, exhaustively: each allowed move works, every other raises."""

from __future__ import annotations

import itertools

import pytest

from panoptes.cloud.errors import ServiceError
from panoptes.cloud.services import states

CASES = [
    (machine, state, event)
    for machine in states.MACHINES
    for state, event in itertools.product(machine.states, machine.events)
]


@pytest.mark.parametrize(
    ("machine", "state", "event"), CASES, ids=[f"{m.name}-{s}-{e}" for m, s, e in CASES]
)
def test_every_state_and_event(machine, state, event):
    allowed = machine.table[state]
    if event in allowed:
        assert machine.next(state, event, "r-1") == allowed[event]
        assert machine.can(state, event)
        assert machine.event_to(state, allowed[event]) is not None
    else:
        with pytest.raises(states.InvalidTransition) as info:
            machine.next(state, event, "r-1")
        assert isinstance(info.value, ServiceError)
        assert info.value.code == "ConflictException"
        assert state in info.value.message
        assert not machine.can(state, event)


@pytest.mark.parametrize("machine", states.MACHINES, ids=lambda m: m.name)
def test_every_state_has_a_row_and_the_model_enum_is_covered(machine):
    assert set(machine.table) == set(machine.states)


def test_tables_use_the_models_enums():
    import json
    from pathlib import Path

    model = json.loads(
        (
            Path(__file__).resolve().parents[3].parent
            / "shared/reference/botocore-panorama/panorama/2019-07-24/service-2.json"
        ).read_text()
    )["shapes"]
    expect = {
        "applicationInstance": "ApplicationInstanceStatus",
        "deviceJob": "UpdateProgress",
        "packageVersion": "PackageVersionStatus",
        "device": "DeviceStatus",
        "nodeFromTemplateJob": "NodeFromTemplateJobStatus",
        "packageImportJob": "PackageImportJobStatus",
    }
    for machine in states.MACHINES:
        assert set(machine.states) == set(model[expect[machine.name]]["enum"]), machine.name


def test_terminal_states_accept_nothing():
    assert states.APPLICATION_INSTANCE.table["REMOVAL_SUCCEEDED"] == {}
    for s in states.FINISHED_JOB_STATUSES:
        assert states.DEVICE_JOB.table[s] == {}
