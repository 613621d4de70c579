"""client.DaemonClient queries, against a daemon seeded with a synthetic RT patient."""

from __future__ import annotations

import pytest

from dbdaemon_client import AssociationRejected, DaemonClient, DaemonStatusError, Entity
from simdaemon.pytest_plugin import TestDaemon
from simdaemon.synthetic import SyntheticPatient
from tests.conftest import client_for


def test_patients_studies_series_and_images(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient
) -> None:
    client = client_for(simdaemon)
    (patient,) = client.find_patients(patient_id=rt_patient.patient_id)
    assert patient.name == rt_patient.name
    assert patient.birth_date == rt_patient.ct[0].PatientBirthDate
    (study,) = client.find_studies(rt_patient.patient_id)
    assert (study.study_uid, study.study_id) == (rt_patient.study_uid, rt_patient.course_id)
    series = client.find_series(study)
    modalities = sorted(s.modality for s in series)
    assert modalities == ["CT", "REG", "RTDOSE", "RTIMAGE", "RTIMAGE", "RTPLAN", "RTSTRUCT"]
    (ct,) = client.find_series(study.study_uid, modality="CT")
    images = client.find_images(ct)
    assert sorted(i.sop_instance_uid for i in images) == sorted(
        str(ds.SOPInstanceUID) for ds in rt_patient.ct
    )
    assert all("ImagePositionPatient" in i.identifier for i in images)


def test_plan_images_carry_the_plan_keys(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient
) -> None:
    client = client_for(simdaemon)
    (plans,) = client.find_series(rt_patient.study_uid, modality="RTPLAN")
    (plan,) = client.find_images(plans)
    assert plan.sop_instance_uid == rt_patient.plan_uid
    assert plan.label == rt_patient.plan_label
    assert plan.identifier.NumberOfBeams == len(rt_patient.plan.BeamSequence)
    assert plan.identifier.ApprovalStatus == "APPROVED"
    (doses,) = client.find_series(rt_patient.study_uid, modality="RTDOSE")
    (dose,) = client.find_images(doses)
    assert dose.referenced_plan == rt_patient.plan_uid
    assert dose.identifier.DoseSummationType == "PLAN"


def test_generic_find_and_failure_statuses(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient
) -> None:
    client = client_for(simdaemon)
    found = client.find("IMAGE", PatientID=rt_patient.patient_id, Modality="RTIMAGE",
                        SOPInstanceUID=None)  # fmt: skip
    assert len(found) == len(rt_patient.rt_images)
    with pytest.raises(DaemonStatusError) as failed:
        client.find("PATIENT", "study", PatientID=rt_patient.patient_id)
    assert failed.value.status == 0xC000
    assert "not valid in Study Root" in str(failed.value)


def test_an_untrusted_caller_is_told_why(simdaemon: TestDaemon) -> None:
    with pytest.raises(AssociationRejected, match="calling AE title not recognized"):
        client_for(simdaemon, calling="STRANGER").find_patients()


def test_the_client_offers_its_maximum_pdu(simdaemon: TestDaemon) -> None:
    entity = simdaemon.test_entity
    client = DaemonClient(Entity(entity.ae_title, entity.host, entity.port),
                          Entity(simdaemon.ae_title, simdaemon.host, simdaemon.port),
                          max_pdu=4096)  # fmt: skip
    assoc = client._associate(["1.2.840.10008.1.1"])
    try:
        assert assoc.requestor.maximum_length == 4096  # what the A-ASSOCIATE-RQ offered
    finally:
        assoc.release()
