"""Injected faults (a first part of issue 8): delays, answers and refusals, deterministic."""

from __future__ import annotations

import pytest

from client import AssociationRejected, DaemonClient, DaemonStatusError, Entity
from simdaemon.faults import FaultError
from simdaemon.pytest_plugin import TestDaemon
from tests import objects


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
