"""Injected faults (a first part of issue 8): delays, answers and refusals, deterministic."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from client import AssociationRejected, DaemonClient, DaemonStatusError, Entity
from simdaemon.faults import FaultError
from simdaemon.pytest_plugin import TestDaemon
from tests import objects
from tests.receiver import Receiver


def client_for(daemon: TestDaemon) -> DaemonClient:
    entity = daemon.test_entity
    return DaemonClient(Entity(entity.ae_title, entity.host, entity.port),
                        Entity(daemon.ae_title, daemon.host, daemon.port))  # fmt: skip


def test_an_echo_answers_the_injected_status_the_first_time_only(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("echo", status=0x0211, comment="unrecognized operation", times=1)
    client = client_for(simdaemon)
    with pytest.raises(DaemonStatusError) as failed:
        client.echo()
    assert (failed.value.status, failed.value.comment) == (0x0211, "unrecognized operation")
    client.echo()  # the second time the fault no longer fires
    (fault,) = simdaemon.audit.events("fault")
    assert fault.status == 0x0211
    assert "echo: answer 0x0211 'unrecognized operation', the first 1 time(s)" in fault.detail


def test_an_association_is_refused_transiently(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("associate", refuse=True, times=1)
    client = client_for(simdaemon)
    with pytest.raises(AssociationRejected) as refused:
        client.echo()
    assert refused.value.transient
    assert client.ping()
    first = simdaemon.audit.events("associate")[0]
    assert (first.outcome, first.rule) == ("rejected", "fault")


def test_a_store_fault_answers_without_storing(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("store", status=0xA700, comment="disk full (injected)",
                         sop_class_uid=objects.CT)  # fmt: skip
    client = client_for(simdaemon)
    ct, plan = objects.ct(), objects.rt_plan()
    result = client.store([ct, plan])
    assert [(o.status, o.comment) for o in result.objects] == [
        (0xA700, "disk full (injected)"),
        (0x0000, ""),
    ]
    assert simdaemon.archive.instance(ct.SOPInstanceUID) is None
    assert simdaemon.archive.instance(plan.SOPInstanceUID) is not None


def test_a_find_fault_matches_its_level(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("find", status=0xA700, comment="busy", level="IMAGE")
    client = client_for(simdaemon)
    assert client.find_patients() == []  # PATIENT level: not matched
    with pytest.raises(DaemonStatusError, match="0xA700: busy"):
        client.find("IMAGE", SOPInstanceUID=None)


def test_a_seed_gives_the_same_faults_in_the_same_places(
    simdaemon_factory: object,
) -> None:
    patterns = []
    for _ in range(2):
        daemon: TestDaemon = simdaemon_factory()  # type: ignore[operator]
        daemon.faults.add("echo", status=0xC000, probability=0.5, seed=7)
        client = client_for(daemon)
        patterns.append([client.ping() for _ in range(16)])
    assert patterns[0] == patterns[1]
    assert 0 < sum(patterns[0]) < 16


@pytest.mark.parametrize(
    ("operation", "options", "message"),
    [
        ("fly", {"delay_ms": 1}, "operation 'fly': expected one of"),
        ("echo", {}, "a fault needs an action"),
        ("echo", {"drop_fraction": 0.5}, "drop_fraction applies to operation 'move' only"),
        ("echo", {"refuse": True}, "refuse=True applies to operation 'associate' only"),
        ("associate", {"status": 1}, "an association has no status"),
        ("echo", {"status": 1, "probability": 2}, "probability = 2: expected 0 to 1"),
    ],
)
def test_bad_rules_say_what_is_wrong(
    simdaemon: TestDaemon, operation: str, options: dict[str, object], message: str
) -> None:
    with pytest.raises(FaultError, match=message.replace("(", r"\(")):
        simdaemon.faults.add(operation, **options)


def test_a_delay_still_answers(simdaemon: TestDaemon) -> None:
    simdaemon.faults.add("echo", delay_ms=50)
    assert client_for(simdaemon).ping()
    (fault,) = simdaemon.audit.events("fault")
    assert "delay 50 ms" in fault.detail


@pytest.fixture
def own_receiver(simdaemon: TestDaemon) -> Iterator[Receiver]:
    entity = simdaemon.test_entity
    started = Receiver(ae_title=entity.ae_title, bind_port=entity.port).start()
    yield started
    started.stop()


@pytest.mark.parametrize("drop_as", ["silent", "failed"])
def test_a_move_drops_a_seeded_fraction_of_its_suboperations(
    simdaemon: TestDaemon, synthetic_patient: Any, own_receiver: Receiver, drop_as: str
) -> None:
    patient = synthetic_patient(seed=5, slices=20, matrix=16)
    simdaemon.faults.add("move", drop_fraction=0.3, drop_as=drop_as, seed=7)
    client = client_for(simdaemon)
    (ct,) = client.find_series(patient.study_uid, modality="CT")
    result = client.move(ct, simdaemon.test_entity.ae_title)
    arrived = len(own_receiver.uids())
    assert 0 < arrived < 20, "about 30 % of the 20 slices are dropped"
    if drop_as == "silent":  # the real daemon's partial list: fewer, and success
        assert (result.status, result.completed, result.failed) == (0x0000, arrived, 0)
    else:
        assert (result.status, result.completed, result.failed) == (0xB000, arrived, 20 - arrived)
        assert len(result.failed_uids) == 20 - arrived


def test_a_move_fault_answers_its_status(simdaemon: TestDaemon, synthetic_patient: Any) -> None:
    patient = synthetic_patient(seed=6, slices=2, matrix=16)
    simdaemon.faults.add("move", status=0xA702, comment="out of resources (injected)")
    client = client_for(simdaemon)
    (study,) = client.find_studies(patient.patient_id)
    with pytest.raises(DaemonStatusError, match="0xA702: out of resources"):
        client.move(study, simdaemon.test_entity.ae_title)
