"""C-FIND over the network against an archive of known contents (tests/known.py)."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from simdaemon import Daemon
from simdaemon.config import from_mapping
from simdaemon.query import compile_query
from simdaemon.services.find import run_query
from tests import known as known_archive
from tests import objects, scu
from tests.conftest import CLIENT

UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}


@pytest.fixture(scope="module")
def archive(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Daemon, known_archive.Known]]:
    folder = tmp_path_factory.mktemp("find")
    latin = {**CLIENT, "ae_title": "LATIN1", "export_charset": "ISO_IR 100"}
    config = from_mapping(
        {"daemon": {"port": 0, "archive": str(folder / "archive")}, "trusted": [CLIENT, latin]},
        folder,
    )
    daemon = Daemon(config).start()
    known = known_archive.build()
    known_archive.store(daemon, known)
    yield daemon, known
    daemon.stop()
    daemon.raise_errors()


def query(level: str, **keys: Any) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = level
    setattr(identifier, UNIQUE[level], "")
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


def plan_reference(known: known_archive.Known, name: str) -> list[Dataset]:
    item = Dataset()
    item.ReferencedSOPInstanceUID = known.uid(name)
    return [item]


# (case, level, keys, names of the objects whose level UID must come back)
# Values written "@name" or "@name.Keyword" are replaced by the known object's UID.
CASES: list[tuple[str, str, dict[str, Any], set[str]]] = [
    # PATIENT (Patient Root only)
    ("single", "PATIENT", {"PatientID": "PAT-B"}, {"mr1"}),
    ("universal", "PATIENT", {"PatientName": ""}, {"ct1", "mr1", "ct_c"}),
    ("wildcard *", "PATIENT", {"PatientID": "PAT-*"}, {"ct1", "mr1"}),
    ("wildcard ?", "PATIENT", {"PatientID": "PAT?B"}, {"mr1"}),
    ("literal _ and %", "PATIENT", {"PatientID": "PAT_C%"}, {"ct_c"}),
    ("_ is not a wildcard", "PATIENT", {"PatientID": "PAT_*"}, {"ct_c"}),
    ("value list", "PATIENT", {"PatientID": "PAT-A\\PAT-B"}, {"ct1", "mr1"}),
    ("closed range", "PATIENT", {"PatientBirthDate": "19700101-19791231"}, {"mr1"}),
    ("open range below", "PATIENT", {"PatientBirthDate": "-19650101"}, {"ct1"}),
    ("open range above", "PATIENT", {"PatientBirthDate": "19750101-"}, {"mr1", "ct_c"}),
    ("PN ignores case", "PATIENT", {"PatientName": "DOE^JOHN"}, {"ct1"}),
    ("PN wildcard ignores case", "PATIENT", {"PatientName": "Do*"}, {"ct1", "ct_c"}),
    ("CS is case-sensitive", "PATIENT", {"PatientSex": "f"}, set()),
    ("LO is case-sensitive", "PATIENT", {"PatientID": "pat-a"}, set()),
    # STUDY
    ("single", "STUDY", {"StudyInstanceUID": "@ct1.StudyInstanceUID"}, {"ct1"}),
    ("universal", "STUDY", {"PatientID": "PAT-A", "StudyDate": ""}, {"ct1", "ct_a2"}),
    ("wildcard", "STUDY", {"StudyDescription": "*neck"}, {"mr1"}),
    ("[ is literal", "STUDY", {"StudyDescription": "Head [and]*"}, {"mr1"}),
    (
        "UID list",
        "STUDY",
        {"StudyInstanceUID": "@ct1.StudyInstanceUID\\@mr1.StudyInstanceUID"},
        {"ct1", "mr1"},
    ),
    ("closed range", "STUDY", {"StudyDate": "20260101-20260228"}, {"ct1", "mr1"}),
    ("open range", "STUDY", {"StudyDate": "20260201-"}, {"mr1", "ct_a2"}),
    ("range to a day", "STUDY", {"StudyDate": "-20251224"}, {"ct_c"}),
    ("PN ignores case", "STUDY", {"PatientName": "dupont^JEANNE"}, {"mr1"}),
    ("case-sensitive", "STUDY", {"StudyDescription": "prostate"}, set()),
    ("course ID as StudyID", "STUDY", {"StudyID": "C2"}, {"ct_a2"}),
    ("modalities in study", "STUDY", {"ModalitiesInStudy": "MR"}, {"mr1"}),
    (
        "sequence ignored above IMAGE",
        "STUDY",
        {"PatientID": "PAT-B", "ReferencedRTPlanSequence": "@plan-reference"},
        {"mr1"},
    ),
    # SERIES
    ("single", "SERIES", {"Modality": "RTPLAN"}, {"plan1"}),
    (
        "only StudyInstanceUID",
        "SERIES",
        {"StudyInstanceUID": "@ct1.StudyInstanceUID"},
        {"ct1", "rs", "plan1", "dose", "reg"},
    ),
    (
        "PatientID and Modality",
        "SERIES",
        {"PatientID": "PAT-A", "Modality": "CT"},
        {"ct1", "ct_a2"},
    ),
    ("wildcard", "SERIES", {"SeriesDescription": "CT*"}, {"ct1"}),
    ("ARIA descriptions", "SERIES", {"SeriesDescription": "ARIA RadOnc*"}, {"rs", "plan1"}),
    ("registration description", "SERIES", {"SeriesDescription": "Image Registration"}, {"reg"}),
    (
        "UID list",
        "SERIES",
        {"SeriesInstanceUID": "@ct1.SeriesInstanceUID\\@mr1.SeriesInstanceUID"},
        {"ct1", "mr1"},
    ),
    ("range from the study", "SERIES", {"StudyDate": "20260201-20260228"}, {"mr1"}),
    (
        "PN wildcard from the patient",
        "SERIES",
        {"PatientName": "DOE*"},
        {"ct1", "rs", "plan1", "dose", "reg", "ct_a2", "ct_c"},
    ),
    ("case-sensitive", "SERIES", {"Modality": "ct"}, set()),
    # IMAGE
    ("single", "IMAGE", {"SOPInstanceUID": "@ct2"}, {"ct2"}),
    (
        "only SeriesInstanceUID",
        "IMAGE",
        {"SeriesInstanceUID": "@ct1.SeriesInstanceUID"},
        {"ct1", "ct2", "ct3"},
    ),
    (
        "PatientID, RTPLAN and RTPlanLabel",
        "IMAGE",
        {"PatientID": "PAT-A", "Modality": "RTPLAN", "RTPlanLabel": "PLAN2"},
        {"plan2"},
    ),
    ("wildcard on a stored attribute", "IMAGE", {"RTPlanLabel": "PLAN*"}, {"plan1", "plan2"}),
    ("UID list", "IMAGE", {"SOPInstanceUID": "@ct1\\@ct3"}, {"ct1", "ct3"}),
    ("ContentDate range", "IMAGE", {"ContentDate": "20260111-20260112"}, {"ct2", "ct3", "plan1"}),
    ("sequence matching", "IMAGE", {"ReferencedRTPlanSequence": "@plan-reference"}, {"dose"}),
    (
        "doses of a study",
        "IMAGE",
        {"SOPClassUID": objects.RT_DOSE, "StudyInstanceUID": "@ct1.StudyInstanceUID"},
        {"dose"},
    ),
    ("PN ignores case", "IMAGE", {"PatientName": "doe^JANE"}, {"ct_c"}),
    ("case-sensitive", "IMAGE", {"RTPlanLabel": "plan1"}, set()),
    (
        "unmatchable keys ignored",
        "IMAGE",
        {"Modality": "RTPLAN", "NumberOfBeams": "0"},
        {"plan1", "plan2"},
    ),
]

MATRIX = [
    pytest.param(model, level, keys, names, id=f"{model}-{level}-{case}")
    for case, level, keys, names in CASES
    for model in ("patient", "study")
    if not (model == "study" and level == "PATIENT")
]


def resolve(known: known_archive.Known, value: Any) -> Any:
    if value == "@plan-reference":
        return plan_reference(known, "plan1")
    if not isinstance(value, str) or "@" not in value:
        return value
    parts = []
    for part in value.split("\\"):
        name, _, keyword = part.removeprefix("@").partition(".")
        parts.append(known.uid(name, keyword or "SOPInstanceUID") if part.startswith("@") else part)
    return "\\".join(parts)


@pytest.mark.parametrize(("model", "level", "keys", "names"), MATRIX)
@pytest.mark.filterwarnings("ignore:Invalid value for VR CS")  # lower-case CS on purpose
def test_matching_matrix(
    archive: tuple[Daemon, known_archive.Known],
    model: str,
    level: str,
    keys: dict[str, Any],
    names: set[str],
) -> None:
    daemon, known = archive
    identifier = query(level, **{k: resolve(known, v) for k, v in keys.items()})
    found, final = scu.find(daemon, identifier, model)
    assert final.Status == 0x0000
    unique = UNIQUE[level]
    got = sorted(str(ds[unique].value) for ds in found)
    want = sorted({str(getattr(known.objects[name], unique)) for name in names})
    assert got == want


def test_responses_carry_exactly_the_requested_keys(
    archive: tuple[Daemon, known_archive.Known],
) -> None:
    daemon, _known = archive
    identifier = query(
        "STUDY",
        PatientID="PAT-B",
        StudyDate="",
        StudyTime="",
        PatientAge="",
        ReferringPhysicianName="",
        SOPInstanceUID="",
    )
    (found,), final = scu.find(daemon, identifier)
    assert final.Status == 0
    assert sorted(e.keyword for e in found) == sorted(
        [
            "SpecificCharacterSet",
            "QueryRetrieveLevel",
            "RetrieveAETitle",
            "StudyInstanceUID",
            "PatientID",
            "StudyDate",
            "StudyTime",
            "PatientAge",
            "ReferringPhysicianName",
            "SOPInstanceUID",
        ]
    )
    assert found.SpecificCharacterSet == "ISO_IR 192"
    assert found.QueryRetrieveLevel == "STUDY"
    assert found.RetrieveAETitle == "VMSDBD"
    assert found.StudyDate == "20260215"
    assert found.PatientAge == ""
    assert found.SOPInstanceUID == ""


def test_series_responses_omit_study_keys(archive: tuple[Daemon, known_archive.Known]) -> None:
    daemon, known = archive
    identifier = query(
        "SERIES",
        StudyInstanceUID=known.uid("mr1", "StudyInstanceUID"),
        StudyDate="",
        StudyDescription="",
        Modality="",
        PatientID="",
    )
    (found,), _ = scu.find(daemon, identifier)
    assert "StudyDate" not in found
    assert "StudyDescription" not in found
    assert found.StudyInstanceUID == known.uid("mr1", "StudyInstanceUID")
    assert (found.Modality, found.PatientID) == ("MR", "PAT-B")


def test_evil_dicom_find_studies(archive: tuple[Daemon, known_archive.Known]) -> None:
    """CFinder.FindStudies(patientId): STUDY level, the patient ID and empty return keys."""
    daemon, known = archive
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.PatientID = "PAT-A"
    for keyword in (
        "StudyInstanceUID",
        "StudyID",
        "StudyDate",
        "StudyTime",
        "StudyDescription",
        "AccessionNumber",
        "PatientName",
    ):
        setattr(identifier, keyword, "")
    found, final = scu.find(daemon, identifier)
    assert final.Status == 0
    by_course = {str(ds.StudyID): ds for ds in found}
    assert set(by_course) == {"C1", "C2"}
    assert by_course["C1"].StudyDescription == "Prostate"
    assert by_course["C1"].AccessionNumber == "ACC1"
    assert by_course["C2"].StudyInstanceUID == known.uid("ct_a2", "StudyInstanceUID")


def test_evil_dicom_find_series_with_only_the_study_uid(
    archive: tuple[Daemon, known_archive.Known],
) -> None:
    daemon, known = archive
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES"
    identifier.StudyInstanceUID = known.uid("ct1", "StudyInstanceUID")
    identifier.SeriesInstanceUID = ""
    identifier.Modality = ""
    identifier.SeriesDescription = ""
    found, _ = scu.find(daemon, identifier)
    assert sorted(str(ds.Modality) for ds in found) == ["CT", "REG", "RTDOSE", "RTPLAN", "RTSTRUCT"]
    descriptions = {str(ds.Modality): str(ds.SeriesDescription) for ds in found}
    assert descriptions["RTPLAN"] == "ARIA RadOnc Plans"
    assert descriptions["RTSTRUCT"] == "ARIA RadOnc Structure Sets"
    assert descriptions["REG"] == "Image Registration"
    assert descriptions["CT"] == "CT Planning"


def test_evil_dicom_find_images_of_a_plan_series(
    archive: tuple[Daemon, known_archive.Known],
) -> None:
    """FindImages for RTPLAN: NumberOfBeams="0" and empty keys still bring the real plans."""
    daemon, known = archive
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.SeriesInstanceUID = known.uid("plan1", "SeriesInstanceUID")
    identifier.SOPInstanceUID = ""
    identifier.RTPlanLabel = ""
    identifier.RTPlanDate = ""
    identifier.NumberOfBeams = "0"
    identifier.ApprovalStatus = ""
    identifier.ReferencedRTPlanSequence = []
    found, final = scu.find(daemon, identifier)
    assert final.Status == 0
    plans = {str(ds.RTPlanLabel): ds for ds in found}
    assert set(plans) == {"PLAN1", "PLAN2"}
    assert plans["PLAN1"].NumberOfBeams == 10
    assert plans["PLAN2"].NumberOfBeams == 3
    assert plans["PLAN1"].ApprovalStatus == "APPROVED"
    assert plans["PLAN2"].ApprovalStatus == "UNAPPROVED"
    assert plans["PLAN1"].RTPlanDate == "20260112"
    assert plans["PLAN1"].SOPInstanceUID == known.uid("plan1")


def test_a_dose_answers_its_referenced_plan(archive: tuple[Daemon, known_archive.Known]) -> None:
    daemon, known = archive
    identifier = query(
        "IMAGE",
        SeriesInstanceUID=known.uid("dose", "SeriesInstanceUID"),
        DoseSummationType="",
        ReferencedRTPlanSequence=[],
    )
    (found,), _ = scu.find(daemon, identifier)
    assert found.DoseSummationType == "PLAN"
    assert found.ReferencedRTPlanSequence[0].ReferencedSOPInstanceUID == known.uid("plan1")


@pytest.mark.parametrize(
    "value", ["x' OR '1'='1", "%", "_", "\\", "*' --", "PAT-A' OR ''='", "[PAT]-A"]
)
def test_injection_attempts_match_nothing(
    archive: tuple[Daemon, known_archive.Known], value: str
) -> None:
    daemon, _ = archive
    found, final = scu.find(daemon, query("PATIENT", PatientID=value), "patient")
    assert final.Status == 0
    assert found == []
    found, _ = scu.find(daemon, query("STUDY", PatientName=value))
    assert found == []


@pytest.mark.parametrize(
    ("level", "model", "comment"),
    [
        (None, "study", "missing Query/Retrieve Level (0008,0052)"),
        ("", "study", "missing Query/Retrieve Level (0008,0052)"),
        ("PATIENT", "study", "level PATIENT is not valid in Study Root"),
        ("FRAME", "patient", "unknown Query/Retrieve Level 'FRAME'"),
    ],
)
def test_a_bad_or_missing_level_is_c000_with_a_comment(
    archive: tuple[Daemon, known_archive.Known], level: str | None, model: str, comment: str
) -> None:
    daemon, _ = archive
    identifier = Dataset()
    if level is not None:
        identifier.QueryRetrieveLevel = level
    identifier.PatientID = "PAT-A"
    found, final = scu.find(daemon, identifier, model)
    assert found == []
    assert (final.Status, final.ErrorComment) == (0xC000, comment)
    assert daemon.audit.events("find")[-1].status == 0xC000


def test_text_is_reencoded_in_the_callers_export_charset(make_daemon: Any) -> None:
    latin = {**CLIENT, "ae_title": "LATIN1", "export_charset": "ISO_IR 100"}
    daemon = make_daemon(trusted=[CLIENT, latin])
    scu.store(daemon, [objects.ct(SpecificCharacterSet="ISO_IR 192", PatientName="Müller^Jürgen")])
    (utf8,), _ = scu.find(daemon, query("PATIENT", PatientName=""), "patient")
    (latin1,), _ = scu.find(daemon, query("PATIENT", PatientName=""), "patient", calling="LATIN1")
    assert utf8.SpecificCharacterSet == "ISO_IR 192"
    assert latin1.SpecificCharacterSet == "ISO_IR 100"
    assert str(utf8.PatientName) == str(latin1.PatientName) == "Müller^Jürgen"


def test_c_cancel_stops_a_long_search_with_fe00(make_daemon: Any) -> None:
    daemon = make_daemon()
    known_archive.bulk_series(daemon, "MANY", 20_000)
    assoc = scu.associate(daemon, contexts=[(StudyRootQueryRetrieveInformationModelFind, None)])
    statuses: list[int] = []
    model = StudyRootQueryRetrieveInformationModelFind
    try:
        for answer, _ in assoc.send_c_find(query("IMAGE", PatientID="MANY"), model, msg_id=7):
            statuses.append(int(answer.Status))
            if len(statuses) == 5:
                assoc.send_c_cancel(7, query_model=model)
    finally:
        assoc.release()
    assert statuses[-1] == 0xFE00
    assert set(statuses[:-1]) == {0xFF00}
    # The client reads slower than the daemon answers, so some responses were already on
    # their way when the cancel went out; before the DUL read its socket while sending, a
    # cancel took effect only after some 3,000.
    assert len(statuses) < 2_000
    (event,) = daemon.audit.events("find")
    assert event.status == 0xFE00
    assert "(cancelled)" in event.detail


def test_pending_status_is_always_ff00(archive: tuple[Daemon, known_archive.Known]) -> None:
    daemon, _ = archive
    assoc = scu.associate(daemon, contexts=[(StudyRootQueryRetrieveInformationModelFind, None)])
    identifier = query("IMAGE", PatientID="PAT-A", Modality="")
    identifier.PatientBirthDate = "19600101"  # an optional key the daemon matches: still FF00
    statuses = [
        int(answer.Status)
        for answer, _ in assoc.send_c_find(identifier, StudyRootQueryRetrieveInformationModelFind)
    ]
    assoc.release()
    assert statuses[:-1] == [0xFF00] * 9
    assert statuses[-1] == 0


def test_find_is_audited(archive: tuple[Daemon, known_archive.Known]) -> None:
    daemon, _ = archive
    scu.find(daemon, query("STUDY", PatientID="PAT-B", NumberOfBeams="0"))
    event = daemon.audit.events("find")[-1]
    assert event.outcome == "success"
    assert event.detail.startswith("STUDY Study Root: PatientID=PAT-B, NumberOfBeams=0")
    assert "ignored NumberOfBeams" in event.detail
    assert event.detail.endswith("1 match(es)")


@pytest.mark.slow
def test_results_stream_with_flat_memory(make_daemon: Any) -> None:
    """20,000 matches are answered one batch at a time: memory does not grow with them."""
    daemon = make_daemon()
    known_archive.bulk_series(daemon, "MANY", 20_000)
    compiled = compile_query(query("IMAGE", PatientID="MANY", InstanceNumber=""), "study")
    responses = run_query(daemon.archive, compiled, "ISO_IR 192", "VMSDBD")
    tracemalloc.start()
    try:
        first = next(responses)
        count = 1 + sum(1 for _ in responses)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert first.InstanceNumber == 0
    assert count == 20_000
    # Streaming peaks near 50 kB; fetching the 20,000 rows first (before any identifier is
    # built) already takes 6 MB.
    assert peak < 1024 * 1024, f"peak {peak / 1e6:.1f} MB while streaming"
