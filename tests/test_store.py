"""C-STORE import over the network: persistence, duplicates, image options, tools, quirks."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from pydicom import dcmread

from simdaemon import Daemon
from simdaemon.archive import READY
from tests import objects, scu
from tests.conftest import CLIENT, MakeDaemon


def test_a_stored_object_is_filed_indexed_and_audited(daemon: Daemon) -> None:
    ds = objects.ct(size=8)
    (answer,) = scu.store(daemon, [ds])
    assert scu.status_of(answer) == (0x0000, "")

    row = daemon.archive.instance(ds.SOPInstanceUID)
    assert row is not None
    assert (row.patient_id, row.study_uid, row.series_uid) == (
        "PAT001", ds.StudyInstanceUID, ds.SeriesInstanceUID,
    )  # fmt: skip
    assert row.path == daemon.archive.files / ds.StudyInstanceUID / ds.SeriesInstanceUID / (
        f"{ds.SOPInstanceUID}.dcm"
    )
    on_disk = dcmread(row.path)
    assert on_disk.PixelData == ds.PixelData
    assert on_disk.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert row.attributes.PatientName == "Doe^John"
    assert row.attributes.Rows == 8
    assert "PixelData" not in row.attributes

    (event,) = daemon.audit.events("store")
    assert (event.outcome, event.status, event.calling_ae) == ("success", 0, "SIMCLIENT")
    assert ds.SOPInstanceUID in event.detail
    persisted = [e for e in daemon.archive.audit_events() if e.operation == "store"]
    assert [e.detail for e in persisted] == [event.detail]


def test_the_audit_outlives_the_daemon(make_daemon: MakeDaemon) -> None:
    first = make_daemon()
    scu.store(first, [objects.ct()])
    first.stop()
    second = make_daemon()
    operations = [e.operation for e in second.archive.audit_events()]
    assert operations == ["associate", "store"]


def test_implicit_vr_objects_are_stored_as_received(daemon: Daemon) -> None:
    ds = objects.ct()
    (answer,) = scu.store(daemon, [ds], transfer_syntax="1.2.840.10008.1.2")
    assert scu.status_of(answer) == (0, "")
    row = daemon.archive.instance(ds.SOPInstanceUID)
    assert row is not None
    assert row.transfer_syntax == "1.2.840.10008.1.2"
    assert dcmread(row.path).PixelData == ds.PixelData


@pytest.mark.parametrize(
    ("policy", "status", "kept"),
    [("reject", 0xC004, "first"), ("overwrite", 0x0000, "second"), ("ignore", 0x0000, "first")],
)
def test_duplicate_sop_instance_uid(
    make_daemon: MakeDaemon, tmp_path: Path, policy: str, status: int, kept: str
) -> None:
    daemon = make_daemon(storage={"on_duplicate": policy})
    first = objects.ct(SeriesDescription="first")
    second = objects.same_patient(first, objects.ct(SeriesDescription="second"))
    second.SOPInstanceUID = first.SOPInstanceUID
    answers = scu.store(daemon, [first, second])
    assert scu.status_of(answers[0]) == (0, "")
    got, comment = scu.status_of(answers[1])
    assert got == status
    if policy == "reject":
        assert comment == "SOP Instance UID already archived"
        assert len(list((tmp_path / "failed").glob("*.reason.txt"))) == 1
    assert daemon.archive.count() == 1
    assert dcmread(daemon.archive.instance(first.SOPInstanceUID).path).SeriesDescription == kept  # type: ignore[union-attr]


def test_created_patients_are_stamped_with_hospital_and_department(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(
        patient_creation={"automatic": True, "hospital": "UAB", "department": "Radiation Oncology"}
    )
    scu.store(daemon, [objects.ct(PatientID="NEW1")])
    (patient,) = daemon.archive.patients()
    assert (patient.patient_id, patient.hospital, patient.department) == (
        "NEW1", "UAB", "Radiation Oncology",
    )  # fmt: skip


@pytest.mark.parametrize("enabled", [True, False])
def test_review_tasks_for_treatment_images(make_daemon: MakeDaemon, enabled: bool) -> None:
    daemon = make_daemon(images={"create_review_task": enabled})
    portal = objects.rt_image()
    ct = objects.same_patient(portal, objects.ct())
    ct.SeriesInstanceUID = objects.uid()
    scu.store(daemon, [portal, ct])
    tasks = daemon.archive.review_tasks()
    if enabled:
        assert [(t.sop_instance_uid, t.kind, t.state) for t in tasks] == [
            (portal.SOPInstanceUID, "RT Image review", "open")
        ]
    else:
        assert tasks == []


@pytest.mark.parametrize(
    ("enabled", "offset", "origin"),
    [(True, 5.0, (10.0, -20.5, 35.0)), (True, 0.0, (10.0, -20.5, 30.0)), (False, 5.0, None)],
)
def test_ct_user_origin_from_data_collection_center(
    make_daemon: MakeDaemon, enabled: bool, offset: float, origin: tuple[float, ...] | None
) -> None:
    daemon = make_daemon(
        images={"user_origin_from_data_collection_center": enabled, "z_offset_mm": offset}
    )
    ds = objects.ct(DataCollectionCenterPatient=[10.0, -20.5, 30.0])
    scu.store(daemon, [ds])
    (series,) = daemon.archive.series()
    assert series.user_origin == origin


def test_failed_import_status_quirk_answers_success_but_parks(
    make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon = make_daemon(
        quirks={"failed_import_status": "success"}, patient_creation={"automatic": False}
    )
    ds = objects.ct()
    (answer,) = scu.store(daemon, [ds])
    assert scu.status_of(answer) == (0x0000, "")
    assert daemon.archive.count() == 0
    (reason,) = (tmp_path / "failed").glob("*.reason.txt")
    assert "status: 0xC001" in reason.read_text()
    assert "answered: 0x0000" in reason.read_text()
    (event,) = daemon.audit.events("store")
    assert event.status == 0x0000
    assert "failed_import_status" in event.detail


def test_save_all_iods_keeps_every_incoming_object(make_daemon: MakeDaemon, tmp_path: Path) -> None:
    daemon = make_daemon(investigation={"save_all_iods": True, "iod_folder": "iods"})
    good = objects.ct()
    bad = objects.ct(PatientID="OTHER", PatientName="Doe^John")
    daemon_two = objects.same_patient(good, objects.ct())
    scu.store(daemon, [good, bad, daemon_two])
    saved = sorted((tmp_path / "iods").glob("*.dcm"))
    assert len(saved) == 3
    assert all("_in_SIMCLIENT_" in path.name for path in saved)
    assert [dcmread(p).SOPInstanceUID for p in saved] == [
        good.SOPInstanceUID, bad.SOPInstanceUID, daemon_two.SOPInstanceUID,
    ]  # fmt: skip


def test_sql_trace_writes_every_statement(make_daemon: MakeDaemon, tmp_path: Path) -> None:
    daemon = make_daemon(investigation={"sql_trace": True})
    scu.store(daemon, [objects.ct()])
    daemon.stop()
    trace = (tmp_path / "archive" / "sqltrace.log").read_text()
    assert "INSERT INTO instances" in trace
    assert "COMMIT" in trace


def test_sql_trace_is_off_by_default(daemon: Daemon, tmp_path: Path) -> None:
    scu.store(daemon, [objects.ct()])
    assert not (tmp_path / "archive" / "sqltrace.log").exists()


@pytest.mark.slow
def test_concurrent_associations_store_every_object_once(make_daemon: MakeDaemon) -> None:
    """8 associations x 50 objects of one new patient at once: one patient, 400 instances."""
    daemon = make_daemon(max_associations=10)
    template = objects.ct(PatientID="CONC1")
    batches = [[objects.same_patient(template, objects.ct()) for _ in range(50)] for _ in range(8)]
    for number, batch in enumerate(batches):
        for ds in batch:
            ds.SeriesInstanceUID = f"{template.SeriesInstanceUID}.{number}"
    statuses: list[list[tuple[int, str]]] = [[] for _ in batches]
    barrier = threading.Barrier(len(batches))

    def send(number: int) -> None:
        barrier.wait()
        statuses[number] = [scu.status_of(a) for a in scu.store(daemon, batches[number])]

    threads = [threading.Thread(target=send, args=(n,)) for n in range(len(batches))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(s == [(0, "")] * 50 for s in statuses)
    (patient,) = daemon.archive.patients()
    assert (patient.patient_id, patient.series, patient.instances) == ("CONC1", 8, 400)
    stored = {row.sop_instance_uid for row in daemon.archive.instances()}
    assert stored == {ds.SOPInstanceUID for batch in batches for ds in batch}
    assert daemon.archive.check().ok
    assert len(daemon.audit.events("store", outcome="success")) == 400


def test_untrusted_caller_cannot_store(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(trusted=[CLIENT])
    assoc = scu.associate(daemon, "STRANGER", contexts=[(objects.CT, None)])
    assert assoc.is_rejected
    assert daemon.archive.count() == 0


def test_an_archive_that_cannot_be_written_answers_a700_and_keeps_serving(
    daemon: Daemon, tmp_path: Path
) -> None:
    ds = objects.ct()
    blocker = daemon.archive.files / ds.StudyInstanceUID
    blocker.write_text("a file where the study's folder must go")
    (answer,) = scu.store(daemon, [ds])
    status, comment = scu.status_of(answer)
    assert status == 0xA700
    assert comment.startswith("archive cannot store it: ")
    assert daemon.archive.count() == 0
    assert daemon.archive.patients() == [], "the transaction was rolled back"
    left = [
        p
        for p in daemon.archive.incoming.iterdir()
        if not (p.suffix == READY and not p.read_bytes().strip(b"\0"))
    ]  # files made ready: zeros only
    assert left == [], "the staged file was removed"
    blocker.unlink()
    (retry,) = scu.store(daemon, [ds])
    assert scu.status_of(retry) == (0, "")
