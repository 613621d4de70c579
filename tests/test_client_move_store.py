"""client.DaemonClient move and store, against a daemon seeded with a synthetic RT patient."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydicom import dcmread

from dbdaemon_client import DaemonClient, DaemonStatusError, NothingMoved, UnsafeMove
from simdaemon.pytest_plugin import TestDaemon
from simdaemon.synthetic import SyntheticPatient, synthetic_patient
from tests import objects
from tests.conftest import client_for
from tests.receiver import Receiver


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


def test_store_reports_each_object(daemon_client: DaemonClient) -> None:
    patient = synthetic_patient(4, slices=3, matrix=16)
    client = daemon_client
    result = client.store(patient.datasets())
    assert result.ok
    assert len(result.objects) == len(patient.datasets())
    clash = objects.ct(PatientID=patient.patient_id, PatientName="Someone^Else")
    second = client.store([clash])
    assert not second.ok
    (failed,) = second.failed
    assert (failed.sop_instance_uid, failed.status) == (clash.SOPInstanceUID, 0xC002)
    assert failed.comment.startswith("Patient ID conflict")


def test_retrieve_to_memory_and_to_a_folder(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient, tmp_path: Path
) -> None:
    client = client_for(simdaemon)
    (plans,) = client.find_series(rt_patient.study_uid, modality="RTPLAN")
    (plan,) = client.find_images(plans)
    (in_memory,) = client.retrieve(plan)
    assert in_memory.SOPInstanceUID == rt_patient.plan_uid
    (ct,) = client.find_series(rt_patient.study_uid, modality="CT")
    files = client.retrieve(ct, into=tmp_path / "ct")
    assert sorted(str(dcmread(p).SOPInstanceUID) for p in files) == sorted(
        str(ds.SOPInstanceUID) for ds in rt_patient.ct
    )


def test_export_plan_writes_the_plan_and_everything_it_references(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient, tmp_path: Path
) -> None:
    other = synthetic_patient(8, slices=3, matrix=16, patient_id=rt_patient.patient_id + "X")
    client = client_for(simdaemon)
    assert client.store(other.datasets()).ok  # another patient's objects stay out
    files = client.export_plan(rt_patient.patient_id, rt_patient.plan_label, tmp_path / "out")
    written = {str(dcmread(p).SOPInstanceUID): dcmread(p) for p in files}
    expected = {str(ds.SOPInstanceUID) for ds in [*rt_patient.ct, rt_patient.structure_set,
                                                   rt_patient.plan, rt_patient.dose]}  # fmt: skip
    assert set(written) == expected
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in files)
    plan = written[rt_patient.plan_uid]
    structures = plan.ReferencedStructureSetSequence[0].ReferencedSOPInstanceUID
    assert structures in written
    contours = {
        str(image.ReferencedSOPInstanceUID)
        for roi in written[structures].ROIContourSequence
        for contour in roi.ContourSequence
        for image in contour.ContourImageSequence
    }
    assert contours <= set(written)
    (dose,) = [ds for ds in written.values() if ds.Modality == "RTDOSE"]
    assert dose.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == rt_patient.plan_uid


@pytest.mark.parametrize("study_uid", ["", "  ", "*", "1.2.*", "1.2.?", "1.2.3\\1.2.4"])
def test_a_move_that_could_over_reach_is_never_sent(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient, study_uid: str
) -> None:
    client = client_for(simdaemon)
    (study,) = client.find_studies(rt_patient.patient_id)
    unsafe = dataclasses.replace(study, study_uid=study_uid)
    with pytest.raises(UnsafeMove, match="C-MOVE at STUDY level needs a single StudyInstanceUID"):
        client.move(unsafe, simdaemon.test_entity.ae_title)
    with pytest.raises(UnsafeMove):
        client.retrieve(unsafe)
    assert simdaemon.audit.events("move") == []  # refused before any association


def test_an_image_move_names_study_series_and_instance(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient, receiver: Receiver
) -> None:
    client = client_for(simdaemon)
    (plans,) = client.find_series(rt_patient.study_uid, modality="RTPLAN")
    (plan,) = client.find_images(plans)
    assert (plan.study_uid, plan.series_uid) == (rt_patient.study_uid, plans.series_uid)
    assert client.move(plan, simdaemon.test_entity.ae_title).completed == 1
    (move,) = simdaemon.audit.events("move")
    for uid in (rt_patient.study_uid, plans.series_uid, rt_patient.plan_uid):
        assert uid in move.detail
    without_study = dataclasses.replace(plan, study_uid="")
    with pytest.raises(UnsafeMove, match="needs a single StudyInstanceUID, not empty"):
        client.move(without_study, simdaemon.test_entity.ae_title)


def test_a_success_that_moved_nothing_is_an_error(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient
) -> None:
    client = client_for(simdaemon)
    (study,) = client.find_studies(rt_patient.patient_id)
    gone = dataclasses.replace(study, study_uid=study.study_uid + ".9")
    with pytest.raises(NothingMoved, match=r"moved nothing \(0 sub-operations\)"):
        client.move(gone, simdaemon.test_entity.ae_title)
    with pytest.raises(NothingMoved):
        client.retrieve(gone)
