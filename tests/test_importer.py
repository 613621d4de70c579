"""The import pipeline on a real archive folder, without a network.

These pin where an object lands when the archive already holds part of its hierarchy: which
rule answers when several could (patient matching, then the duplicate policy, then the
stored study's patient, then the stored series' study), with the exact status, Error Comment
and explanation, and that a refused object leaves every row as it was.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset

from simdaemon import config
from simdaemon.archive import Archive
from simdaemon.importer import Importer, ImportResult, received_from
from simdaemon.investigation import Investigator
from tests import objects

Store = Callable[[Dataset], ImportResult]


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    with Archive(tmp_path / "archive") as opened:
        yield opened


@pytest.fixture
def make_importer(archive: Archive, tmp_path: Path) -> Callable[..., Store]:
    def make(**tables: Any) -> Store:
        settings = config.from_mapping(
            {"investigation": {"failed_import_folder": str(tmp_path / "failed")}, **tables}
        )
        importer = Importer(settings, archive, Investigator(settings.investigation))
        return lambda dataset: importer.run(received_from(dataset, "SCU"))

    return make


def _parked_detail(result: ImportResult) -> str:
    """The explanation without the name of the parked file (which carries a time stamp)."""
    assert result.parked is not None
    return result.detail.removesuffix(f"; parked as {result.parked.name}")


def test_attach_and_create_explain_themselves(make_importer: Callable[..., Store]) -> None:
    store = make_importer(patient_creation={"hospital": "UAB", "department": "Rad Onc"})
    first = objects.ct()
    created = store(first)
    attached = store(objects.same_patient(first, objects.ct()))
    assert (created.status, created.rule, created.comment) == (0, "stored", "")
    assert created.detail == (
        "created patient 'PAT001' (Patient ID 'PAT001', last name 'Doe', first name 'John') "
        "in UAB / Rad Onc"
    )
    assert attached.detail == (
        "attached to stored patient 'PAT001' (Patient ID 'PAT001', last name 'Doe', "
        "first name 'John')"
    )


def test_a_study_filed_under_another_patient_is_refused(
    make_importer: Callable[..., Store], archive: Archive
) -> None:
    store = make_importer()
    first = objects.ct()
    assert store(first).stored
    other = objects.ct(PatientID="PAT002", StudyInstanceUID=first.StudyInstanceUID)
    result = store(other)
    assert (result.status, result.rule) == (0xC002, "study-patient")
    assert result.comment == "Study Instance UID belongs to another patient"
    assert _parked_detail(result) == (
        f"Study Instance UID {first.StudyInstanceUID} is filed under patient 'PAT001', "
        "not under the object's patient 'PAT002'"
    )
    assert [p.patient_id for p in archive.patients()] == ["PAT001"]  # PAT002 not created
    assert archive.count() == 1


def test_a_series_filed_under_another_study_is_refused(
    make_importer: Callable[..., Store], archive: Archive
) -> None:
    store = make_importer()
    first = objects.ct()
    assert store(first).stored
    other = objects.ct(SeriesInstanceUID=first.SeriesInstanceUID)  # same patient, new study
    result = store(other)
    assert (result.status, result.rule) == (0xA900, "series-study")
    assert result.comment == "Series Instance UID belongs to another study"
    assert _parked_detail(result) == (
        f"Series Instance UID {first.SeriesInstanceUID} is filed under study "
        f"{first.StudyInstanceUID}, not under the object's study {other.StudyInstanceUID}"
    )
    assert archive.count() == 1
    assert len(archive.series()) == 1


def test_a_patient_conflict_answers_before_the_duplicate_policy(
    make_importer: Callable[..., Store],
) -> None:
    store = make_importer(storage={"on_duplicate": "ignore"})
    first = objects.ct()
    assert store(first).stored
    renamed = objects.ct(PatientName="Smith^Jane", SOPInstanceUID=first.SOPInstanceUID)
    result = store(renamed)
    assert (result.status, result.rule) == (0xC002, "patient-id-unique")
    assert result.comment == "Patient ID conflict: last name, first name differ"


@pytest.mark.parametrize(
    ("policy", "status", "rule", "comment"),
    [
        ("reject", 0xC004, "on-duplicate", "SOP Instance UID already archived"),
        ("ignore", 0x0000, "stored", ""),
        ("overwrite", 0xC002, "study-patient", "Study Instance UID belongs to another patient"),
    ],
)
def test_the_duplicate_policy_answers_before_the_study_owner(
    make_importer: Callable[..., Store],
    archive: Archive,
    policy: str,
    status: int,
    rule: str,
    comment: str,
) -> None:
    """Same SOP Instance UID and study, but another patient: the duplicate rule speaks first."""
    store = make_importer(storage={"on_duplicate": policy})
    first = objects.ct()
    assert store(first).stored
    other = objects.ct(
        PatientID="PAT002",
        StudyInstanceUID=first.StudyInstanceUID,
        SOPInstanceUID=first.SOPInstanceUID,
    )
    result = store(other)
    assert (result.status, result.rule, result.comment) == (status, rule, comment)
    if policy == "ignore":
        assert result.detail == (
            f"SOP Instance UID {first.SOPInstanceUID} is already in the archive; kept the "
            'stored copy ([storage] on_duplicate = "ignore")'
        )
    if policy == "reject":
        assert _parked_detail(result) == (
            f"SOP Instance UID {first.SOPInstanceUID} is already in the archive and "
            '[storage] on_duplicate = "reject"'
        )
    assert [p.patient_id for p in archive.patients()] == ["PAT001"]
    stored = archive.instance(first.SOPInstanceUID)
    assert stored is not None
    assert stored.patient_id == "PAT001"


def test_overwrite_replaces_the_stored_copy_and_says_so(
    make_importer: Callable[..., Store], archive: Archive
) -> None:
    store = make_importer(storage={"on_duplicate": "overwrite"})
    first = objects.ct(SeriesDescription="first")
    assert store(first).stored
    old = archive.instance(first.SOPInstanceUID)
    second = objects.ct(SeriesDescription="second", SOPInstanceUID=first.SOPInstanceUID)
    result = store(second)  # same patient, another study and series
    assert result.status == 0
    assert result.detail == (
        "attached to stored patient 'PAT001' (Patient ID 'PAT001', last name 'Doe', "
        "first name 'John'); replaced the stored copy ([storage] on_duplicate = \"overwrite\")"
    )
    assert archive.count() == 1
    stored = archive.instance(first.SOPInstanceUID)
    assert stored is not None
    assert stored.series_uid == second.SeriesInstanceUID
    assert stored.path.is_file()
    assert old is not None
    assert not old.path.exists()
