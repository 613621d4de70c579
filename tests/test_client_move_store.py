"""client.DaemonClient move and store, against a daemon seeded with a synthetic RT patient."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from client import DaemonClient, DaemonStatusError, Entity
from simdaemon.pytest_plugin import TestDaemon
from simdaemon.synthetic import SyntheticPatient, synthetic_patient
from tests import objects
from tests.receiver import Receiver


def client_for(daemon: TestDaemon) -> DaemonClient:
    entity = daemon.test_entity
    return DaemonClient(
        Entity(entity.ae_title, entity.host, entity.port),
        Entity(daemon.ae_title, daemon.host, daemon.port),
    )


@pytest.fixture
def receiver(simdaemon: TestDaemon) -> Iterator[Receiver]:
    """The test's own storage receiver, on the port its entity reserved."""
    entity = simdaemon.test_entity
    started = Receiver(ae_title=entity.ae_title, bind_port=entity.port).start()
    yield started
    started.stop()


def test_move_a_study_to_the_test_itself_with_progress(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient, receiver: Receiver
) -> None:
    client = client_for(simdaemon)
    (study,) = client.find_studies(rt_patient.patient_id)
    seen: list[tuple[int, int, int, int]] = []
    result = client.move(study, simdaemon.test_entity.ae_title,
                         progress=lambda *counts: seen.append(counts))  # fmt: skip
    total = len(rt_patient.datasets())
    assert (result.ok, result.completed, result.failed) == (True, total, 0)
    assert len(seen) == total
    assert seen[-1] == (0, total, 0, 0)
    assert sorted(receiver.uids()) == sorted(str(ds.SOPInstanceUID)
                                             for ds in rt_patient.datasets())  # fmt: skip


def test_a_partial_move_lists_what_failed(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient
) -> None:
    entity = simdaemon.test_entity
    picky = Receiver(ae_title=entity.ae_title, bind_port=entity.port,
                     refuse=[objects.RT_DOSE]).start()  # fmt: skip
    try:
        client = client_for(simdaemon)
        (study,) = client.find_studies(rt_patient.patient_id)
        result = client.move(study, entity.ae_title)
    finally:
        picky.stop()
    total = len(rt_patient.datasets())
    assert (result.status, result.completed, result.failed) == (0xB000, total - 1, 1)
    assert not result.ok
    assert result.failed_uids == (str(rt_patient.dose.SOPInstanceUID),)


def test_a_move_to_an_unknown_destination_raises(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient
) -> None:
    client = client_for(simdaemon)
    (study,) = client.find_studies(rt_patient.patient_id)
    with pytest.raises(DaemonStatusError) as refused:
        client.move(study, "NOBODY")
    assert refused.value.status == 0xA801
    assert "not a trusted entity" in str(refused.value)


def test_store_reports_each_object(simdaemon: TestDaemon) -> None:
    patient = synthetic_patient(4, slices=3, matrix=16)
    client = client_for(simdaemon)
    result = client.store(patient.datasets())
    assert result.ok
    assert len(result.objects) == len(patient.datasets())
    clash = objects.ct(PatientID=patient.patient_id, PatientName="Someone^Else")
    second = client.store([clash])
    assert not second.ok
    (failed,) = second.failed
    assert (failed.sop_instance_uid, failed.status) == (clash.SOPInstanceUID, 0xC002)
    assert failed.comment.startswith("Patient ID conflict")
