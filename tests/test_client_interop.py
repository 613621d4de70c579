"""Every public call of the client, with the same assertions against three servers.

simdaemon, DCMTK's dcmqrscp and Orthanc each hold the same synthetic RT patient
(``tests/qr_servers.py``). A client that passes against all three leans on no server's
leniency: hierarchical servers need the unique keys of every level above, Orthanc matches on
every value it is sent, and none of them may be asked to move "everything".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset

from dbdaemon_client import (
    AssociationRejected,
    ConnectionRefused,
    DaemonClient,
    DaemonStatusError,
    Entity,
    ImageResult,
    NothingMoved,
    SeriesResult,
    StudyResult,
    UnsafeMove,
)
from dbdaemon_client.results import text
from simdaemon.synthetic import SyntheticPatient, synthetic_patient
from tests import qr_servers
from tests.qr_servers import Peer, QRServer
from tests.races import requestor_looks_after_the_answer
from tests.receiver import Receiver, receiving

pytestmark = pytest.mark.slow  # starts dcmqrscp and Orthanc

#: The fixtures qr_server and qr_peers: a plugin, so every module shares one set of servers.
pytest_plugins = ["tests.qr_servers"]

RT_PLAN = "1.2.840.10008.5.1.4.1.1.481.5"


def entity(peer: Peer) -> Entity:
    return Entity(peer.ae_title, peer.host, peer.port)


@pytest.fixture
def client(qr_server: QRServer) -> DaemonClient:
    return DaemonClient(entity(qr_server.local), entity(qr_server.server),
                        connect_timeout=5, idle_timeout=60)  # fmt: skip


@pytest.fixture
def here(qr_server: QRServer) -> Iterator[Receiver]:
    """A storage SCP on the test's own entity's port, for moves addressed to the test."""
    yield from receiving(qr_server.local.ae_title, qr_server.local.port)


@pytest.fixture
def third(qr_server: QRServer) -> Iterator[Receiver]:
    """A third party's storage SCP: the server moves to it on the test's request."""
    yield from receiving(qr_server.third.ae_title, qr_server.third.port)


def uids(datasets: list[Dataset]) -> list[str]:
    return sorted(str(ds.SOPInstanceUID) for ds in datasets)


def series_of(patient: SyntheticPatient) -> dict[str, str]:
    """Series Instance UID -> Modality, of every object the patient has."""
    return {str(ds.SeriesInstanceUID): str(ds.Modality) for ds in patient.datasets()}


def in_series(patient: SyntheticPatient, modality: str) -> list[Dataset]:
    return [ds for ds in patient.datasets() if ds.Modality == modality]


def study(client: DaemonClient, patient: SyntheticPatient) -> StudyResult:
    (found,) = client.find_studies(patient.patient_id)
    return found


def one_series(client: DaemonClient, patient: SyntheticPatient, modality: str) -> SeriesResult:
    (found,) = client.find_series(patient.study_uid, modality=modality)
    return found


def test_echo_and_ping(client: DaemonClient) -> None:
    client.echo()
    assert client.ping()


def test_find_patients_studies_and_series(client: DaemonClient, qr_server: QRServer) -> None:
    patient = qr_server.patient
    (found,) = client.find_patients(patient_id=patient.patient_id)
    assert (found.patient_id, found.name) == (patient.patient_id, patient.name)
    assert found.birth_date == patient.ct[0].PatientBirthDate
    course = study(client, patient)
    assert (course.study_uid, course.patient_id) == (patient.study_uid, patient.patient_id)
    listed = client.find_series(course)
    assert {s.series_uid: s.modality for s in listed} == series_of(patient)
    assert {s.study_uid for s in listed} == {patient.study_uid}


# Identifiers a user writes by hand, in both information models: the keys of every level above
# are unique keys (hierarchical servers require them), the asked-for unique key is empty.
HAND_WRITTEN = {
    "patient-root PATIENT": ("patient", "PATIENT", {"PatientID": "{pid}"}, "PatientID"),
    "patient-root STUDY": ("patient", "STUDY", {"PatientID": "{pid}", "StudyInstanceUID": ""},
                           "StudyInstanceUID"),
    "patient-root SERIES": ("patient", "SERIES", {"PatientID": "{pid}",
                            "StudyInstanceUID": "{study}", "SeriesInstanceUID": ""},
                            "SeriesInstanceUID"),
    "patient-root IMAGE": ("patient", "IMAGE", {"PatientID": "{pid}", "StudyInstanceUID": "{study}",
                           "SeriesInstanceUID": "{ct}", "SOPInstanceUID": ""}, "SOPInstanceUID"),
    "study-root STUDY": ("study", "STUDY", {"PatientID": "{pid}", "StudyInstanceUID": ""},
                         "StudyInstanceUID"),
    "study-root SERIES": ("study", "SERIES", {"StudyInstanceUID": "{study}",
                          "SeriesInstanceUID": ""}, "SeriesInstanceUID"),
    "study-root IMAGE": ("study", "IMAGE", {"StudyInstanceUID": "{study}",
                         "SeriesInstanceUID": "{ct}", "SOPInstanceUID": ""}, "SOPInstanceUID"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HAND_WRITTEN))
def test_find_at_every_level_in_both_roots(
    client: DaemonClient, qr_server: QRServer, case: str
) -> None:
    patient = qr_server.patient
    model, level, keys, unique = HAND_WRITTEN[case]
    values = {"pid": patient.patient_id, "study": patient.study_uid, "ct": patient.ct_series_uid}
    found = client.find(level, model, **{k: v.format(**values) for k, v in keys.items()})
    expected = {
        "PatientID": {patient.patient_id},
        "StudyInstanceUID": {patient.study_uid},
        "SeriesInstanceUID": set(series_of(patient)),
        "SOPInstanceUID": set(uids(patient.ct)),
    }[unique]
    assert {str(i.get(unique, "")) for i in found} == expected
    assert all(i.QueryRetrieveLevel == level for i in found)


@pytest.mark.parametrize("modality", ["CT", "RTPLAN", "RTSTRUCT", "RTDOSE"])
def test_find_images_of_each_modality(
    client: DaemonClient, qr_server: QRServer, modality: str
) -> None:
    patient = qr_server.patient
    series = one_series(client, patient, modality)
    images = client.find_images(series)
    assert sorted(i.sop_instance_uid for i in images) == uids(in_series(patient, modality))
    for image in images:  # the unique keys above are kept, so each result can be moved
        assert (image.study_uid, image.series_uid) == (patient.study_uid, series.series_uid)
    if modality == "RTPLAN":
        (plan,) = images
        # dcmqrscp returns only the attributes it indexes; those returned must be right
        assert plan.sop_class_uid in ("", RT_PLAN)
        assert plan.label in ("", patient.plan_label)
        beams = text(plan.identifier, "NumberOfBeams")  # a return key, never matched on
        assert beams in ("", str(len(patient.plan.BeamSequence)))
    if modality == "RTDOSE":
        (dose,) = images
        assert dose.referenced_plan in ("", patient.plan_uid)


def targets(client: DaemonClient, patient: SyntheticPatient, level: str) -> tuple[
    StudyResult | SeriesResult | ImageResult, list[Dataset]
]:  # fmt: skip
    """A find result at ``level`` and the objects a move of it must deliver."""
    if level == "STUDY":
        return study(client, patient), patient.datasets()
    ct = one_series(client, patient, "CT")
    if level == "SERIES":
        return ct, patient.ct
    (plans,) = client.find_series(patient.study_uid, modality="RTPLAN")
    (plan,) = client.find_images(plans)
    return plan, [patient.plan]


@pytest.mark.parametrize("level", ["STUDY", "SERIES", "IMAGE"])
def test_move_to_self(
    client: DaemonClient, qr_server: QRServer, here: Receiver, level: str
) -> None:
    target, expected = targets(client, qr_server.patient, level)
    seen: list[tuple[int, int, int, int]] = []
    result = client.move(target, qr_server.local.ae_title,
                         progress=lambda *counts: seen.append(counts))  # fmt: skip
    assert (result.ok, result.completed, result.failed) == (True, len(expected), 0)
    assert sorted(here.uids()) == uids(expected)


@pytest.mark.parametrize("level", ["STUDY", "SERIES", "IMAGE"])
def test_move_to_a_third_party(
    client: DaemonClient, qr_server: QRServer, third: Receiver, level: str
) -> None:
    target, expected = targets(client, qr_server.patient, level)
    result = client.move(target, qr_server.third.ae_title)
    assert (result.ok, result.completed) == (True, len(expected))
    assert sorted(third.uids()) == uids(expected)
    assert {r.calling_ae for r in third.received} == {qr_server.server.ae_title}


def test_retrieve_to_memory_and_to_a_folder(
    client: DaemonClient, qr_server: QRServer, tmp_path: Path
) -> None:
    patient = qr_server.patient
    plans = one_series(client, patient, "RTPLAN")
    (plan,) = client.find_images(plans)
    (in_memory,) = client.retrieve(plan)
    assert in_memory.SOPInstanceUID == patient.plan_uid
    assert in_memory.RTPlanLabel == patient.plan_label
    files = client.retrieve(one_series(client, patient, "CT"), into=tmp_path / "ct")
    arrived = {str(ds.SOPInstanceUID): ds for ds in map(dcmread, files)}
    assert sorted(arrived) == uids(patient.ct)
    for sent in patient.ct:
        assert arrived[str(sent.SOPInstanceUID)].PixelData == sent.PixelData


def test_store_adds_a_patient_the_server_then_lists(
    client: DaemonClient, qr_server: QRServer
) -> None:
    newcomer = synthetic_patient(
        {"simdaemon": 31, "dcmqrscp": 32, "orthanc": 33}[qr_server.name],
        slices=2, matrix=16, locale="en_US",
    )  # fmt: skip
    result = client.store(newcomer.datasets())
    assert result.ok, result.failed
    assert [o.sop_instance_uid for o in result.objects] == [
        str(ds.SOPInstanceUID) for ds in newcomer.datasets()
    ]
    assert set(uids(newcomer.datasets())) <= qr_server.stored_uids()
    (listed,) = client.find_studies(newcomer.patient_id)
    assert listed.study_uid == newcomer.study_uid


def test_export_plan(client: DaemonClient, qr_server: QRServer, tmp_path: Path) -> None:
    patient = qr_server.patient
    files = client.export_plan(patient.patient_id, patient.plan_label, tmp_path / "out")
    written = {str(dcmread(p).SOPInstanceUID) for p in files}
    expected = {str(ds.SOPInstanceUID) for ds in
                [*patient.ct, patient.structure_set, patient.plan, patient.dose]}  # fmt: skip
    assert written == expected
    assert len(files) == len(expected)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(p.name for p in files)
    by_uid = client.export_plan(patient.patient_id, patient.plan_uid, tmp_path / "again")
    assert {str(dcmread(p).SOPInstanceUID) for p in by_uid} == expected


def test_a_wrong_called_ae_title_is_rejected(qr_server: QRServer) -> None:
    wrong = dataclasses.replace(entity(qr_server.server), ae_title="NOTTHEM")
    client = DaemonClient(entity(qr_server.local), wrong, connect_timeout=5)
    with pytest.raises(AssociationRejected) as rejected:
        client.echo()
    assert rejected.value.result == 1  # permanent: trying again will not help
    assert f"NOTTHEM at 127.0.0.1:{qr_server.server.port}" in str(rejected.value)
    assert not client.ping()


def test_a_rejection_read_before_pynetdicom_looks_is_still_a_rejection(
    qr_server: QRServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pynetdicom's race (tests/races.py) against each server's own A-ASSOCIATE-RJ."""
    requestor_looks_after_the_answer(monkeypatch, qr_server.server.port)
    wrong = dataclasses.replace(entity(qr_server.server), ae_title="NOTTHEM")
    client = DaemonClient(entity(qr_server.local), wrong, connect_timeout=5)
    with pytest.raises(AssociationRejected) as rejected:
        client.echo()
    assert rejected.value.result == 1


def test_a_move_to_an_unknown_destination_is_a_status_error(
    client: DaemonClient, qr_server: QRServer
) -> None:
    with pytest.raises(DaemonStatusError) as refused:
        client.move(study(client, qr_server.patient), "NOBODY")
    # PS3.4 names 0xA801 (Move Destination unknown); Orthanc 1.10 answers 0xC000
    assert refused.value.status in (0xA801, 0xC000)


def test_a_move_that_finds_nothing_is_an_error(client: DaemonClient, qr_server: QRServer) -> None:
    gone = dataclasses.replace(study(client, qr_server.patient), study_uid="1.2.826.0.1.3680043.9")
    with pytest.raises((NothingMoved, DaemonStatusError)):
        client.move(gone, qr_server.local.ae_title)


def test_an_unsafe_move_is_never_sent(client: DaemonClient, qr_server: QRServer) -> None:
    course = study(client, qr_server.patient)
    for unsafe in ("", "*", course.study_uid + "\\1.2.3"):
        with pytest.raises(UnsafeMove):
            client.move(dataclasses.replace(course, study_uid=unsafe), qr_server.local.ae_title)


def test_a_server_that_is_down_is_refused(qr_server: QRServer) -> None:
    with qr_servers.PortReservation() as nobody:  # bound, never listening
        gone = Entity(qr_server.server.ae_title, "127.0.0.1", nobody.port)
        down = DaemonClient(entity(qr_server.local), gone)
        with pytest.raises(ConnectionRefused):
            down.find_studies(qr_server.patient.patient_id)
