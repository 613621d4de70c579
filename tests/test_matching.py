"""Placement as a pure decision: every outcome of :func:`simdaemon.matching.place`.

No sockets, no SQLite: each case hands over what the archive would have found and compares
the whole decision, so the status, the rule, the Error Comment and the explanation are pinned
word for word. The network tests (test_matching_matrix.py, test_importer.py) check that the
archive supplies these candidates and answers with these words.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from simdaemon import config
from simdaemon.config import PatientCreation, PatientMatching
from simdaemon.matching import (
    Ambiguous,
    Attach,
    Candidates,
    Conflict,
    Create,
    Demographics,
    Incoming,
    Keep,
    NotFound,
    Placement,
    Refusal,
    Rules,
    StoredInstance,
    StoredPatient,
    StoredSeries,
    StoredStudy,
    place,
)

STUDY, SERIES, SOP = "1.2.3", "1.2.3.4", "1.2.3.4.5"
DOE = Demographics("P1", last_name="Doe", first_name="John", birth_date="19600101")
P1 = StoredPatient(1, DOE)
TWIN = StoredPatient(2, Demographics("P2", last_name="Doe", first_name="John"))
SMITH = StoredPatient(3, Demographics("P1", last_name="Smith", first_name="Jane"))
WANTED = "Patient ID 'P1', last name 'Doe', first name 'John'"
SAME = (("patient_id", "P1", "P1"), ("last_name", "Doe", "Doe"), ("first_name", "John", "John"))
NEW = (("patient_id", "P1", ""), ("last_name", "Doe", ""), ("first_name", "John", ""))
ATTACHED = f"attached to stored patient 'P1' ({WANTED})"
CREATED = f"created patient 'P1' ({WANTED})"
OWN_STUDY = StoredStudy(key=10, patient=1, patient_id="P1")
OTHERS_STUDY = StoredStudy(key=11, patient=2, patient_id="P2")
OWN_SERIES = StoredSeries(key=20, study=10, study_uid=STUDY)
OTHER_SERIES = StoredSeries(key=21, study=12, study_uid="1.9")
STORED = StoredInstance(key=30, file=Path("files/1.2.3/1.2.3.4/1.2.3.4.5.dcm"))
OVERWRITTEN = '; replaced the stored copy ([storage] on_duplicate = "overwrite")'
STUDY_OWNER = Conflict(
    0xC002,
    "study-patient",
    "Study Instance UID belongs to another patient",
    f"Study Instance UID {STUDY} is filed under patient 'P2', not under the object's patient 'P1'",
)
SERIES_STUDY = Conflict(
    0xA900,
    "series-study",
    "Series Instance UID belongs to another study",
    f"Series Instance UID {SERIES} is filed under study 1.9, not under the object's study {STUDY}",
)
DUPLICATE = Conflict(
    0xC004,
    "on-duplicate",
    "SOP Instance UID already archived",
    f'SOP Instance UID {SOP} is already in the archive and [storage] on_duplicate = "reject"',
)
KEPT = Keep(
    f"SOP Instance UID {SOP} is already in the archive; kept the stored copy "
    '([storage] on_duplicate = "ignore")'
)


def rules(on_duplicate: str = "reject", automatic: bool = True, **switches: bool) -> Rules:
    """The default rules with some switches changed."""
    creation = PatientCreation(automatic=automatic, hospital="UAB", department="Rad Onc")
    return Rules(PatientMatching(**switches), creation, on_duplicate)


def incoming(demographics: Demographics = DOE) -> Incoming:
    return Incoming(demographics, STUDY, SERIES, SOP)


CASES: list[tuple[str, Candidates, Incoming, Rules, Placement]] = [
    # --- the patient (SPEC section 5 step 3) ---------------------------------------------
    (
        "one patient agrees: attach, study and series new",
        Candidates(patients=(P1,)),
        incoming(),
        rules(),
        Attach(P1, ATTACHED, SAME),
    ),
    (
        "names in another case and padded: still the same patient",
        Candidates(patients=(P1,)),
        incoming(Demographics.from_values("P1 ", [], " DOE^john ", "19600101")),
        rules(),
        Attach(
            P1,
            "attached to stored patient 'P1' (Patient ID 'P1', last name 'DOE', first name 'john')",
            (
                ("patient_id", "P1", "P1"),
                ("last_name", "DOE", "Doe"),
                ("first_name", "john", "John"),
            ),
        ),
    ),
    (
        "no criteria enabled: the only stored patient agrees",
        Candidates(patients=(P1,)),
        incoming(Demographics("P7")),
        rules(patient_id=False, last_name=False, first_name=False),
        Attach(P1, "attached to stored patient 'P1' ((no criteria enabled))"),
    ),
    (
        "two patients agree: ambiguous",
        Candidates(patients=(P1, TWIN)),
        incoming(),
        rules(patient_id=False),
        Ambiguous(
            0xC003,
            "patient-matching",
            "more than one stored patient matches",
            "2 stored patients ('P1', 'P2') match last name 'Doe', first name 'John'; "
            "enable more [patient_matching] criteria to tell them apart",
            (("last_name", "Doe", "Doe"), ("first_name", "John", "John")),
        ),
    ),
    (
        "the Patient ID belongs to someone else: conflict",
        Candidates(patients=(SMITH,)),
        incoming(),
        rules(),
        Conflict(
            0xC002,
            "patient-id-unique",
            "Patient ID conflict: last name, first name differ",
            "Patient ID 'P1' belongs to a stored patient with last name 'Smith', first name "
            "'Jane', but the object has last name 'Doe', first name 'John'; Patient IDs are "
            "unique, so it cannot be a new patient",
            (("last_name", "Doe", "Smith"), ("first_name", "John", "Jane")),
        ),
    ),
    (
        "nobody agrees, creation off: not found",
        Candidates(),
        incoming(),
        rules(automatic=False),
        NotFound(
            0xC001,
            "patient-creation",
            "no matching patient; automatic creation is off",
            f"no stored patient matches {WANTED} and automatic patient creation is off "
            "([patient_creation] automatic = false)",
            NEW,
        ),
    ),
    (
        "nobody agrees, creation on: create, stamped",
        Candidates(),
        incoming(),
        rules(),
        Create("UAB", "Rad Onc", f"{CREATED} in UAB / Rad Onc", NEW),
    ),
    (
        "a patient conflict answers before the duplicate policy",
        Candidates(patients=(SMITH,), duplicate=STORED),
        incoming(),
        rules(on_duplicate="ignore"),
        Conflict(
            0xC002,
            "patient-id-unique",
            "Patient ID conflict: last name, first name differ",
            "Patient ID 'P1' belongs to a stored patient with last name 'Smith', first name "
            "'Jane', but the object has last name 'Doe', first name 'John'; Patient IDs are "
            "unique, so it cannot be a new patient",
            (("last_name", "Doe", "Smith"), ("first_name", "John", "Jane")),
        ),
    ),
    # --- a stored object with the same SOP Instance UID (step 4) -------------------------
    (
        "duplicate, reject",
        Candidates(patients=(P1,), study=OWN_STUDY, series=OWN_SERIES, duplicate=STORED),
        incoming(),
        rules(on_duplicate="reject"),
        DUPLICATE,
    ),
    (
        "duplicate, ignore: keep the stored copy",
        Candidates(patients=(P1,), study=OWN_STUDY, series=OWN_SERIES, duplicate=STORED),
        incoming(),
        rules(on_duplicate="ignore"),
        KEPT,
    ),
    (
        "duplicate, overwrite: attach and replace it",
        Candidates(patients=(P1,), study=OWN_STUDY, series=OWN_SERIES, duplicate=STORED),
        incoming(),
        rules(on_duplicate="overwrite"),
        Attach(P1, ATTACHED + OVERWRITTEN, SAME, OWN_STUDY, OWN_SERIES, STORED),
    ),
    (
        "duplicate of another patient's object, overwrite: create and replace it",
        Candidates(duplicate=STORED),
        incoming(),
        rules(on_duplicate="overwrite"),
        Create("UAB", "Rad Onc", f"{CREATED} in UAB / Rad Onc{OVERWRITTEN}", NEW, STORED),
    ),
    # --- a stored study stays with its patient -------------------------------------------
    (
        "the patient's own stored study and series: attach to both",
        Candidates(patients=(P1,), study=OWN_STUDY, series=OWN_SERIES),
        incoming(),
        rules(),
        Attach(P1, ATTACHED, SAME, OWN_STUDY, OWN_SERIES),
    ),
    (
        "the patient's own stored study, new series",
        Candidates(patients=(P1,), study=OWN_STUDY),
        incoming(),
        rules(),
        Attach(P1, ATTACHED, SAME, OWN_STUDY),
    ),
    (
        "the study is filed under another patient",
        Candidates(patients=(P1,), study=OTHERS_STUDY),
        incoming(),
        rules(),
        STUDY_OWNER,
    ),
    (
        "a new patient cannot take a stored study",
        Candidates(study=OTHERS_STUDY),
        incoming(),
        rules(),
        STUDY_OWNER,
    ),
    (
        "the duplicate policy answers before the study owner: reject",
        Candidates(patients=(P1,), study=OTHERS_STUDY, duplicate=STORED),
        incoming(),
        rules(on_duplicate="reject"),
        DUPLICATE,
    ),
    (
        "the duplicate policy answers before the study owner: ignore",
        Candidates(patients=(P1,), study=OTHERS_STUDY, duplicate=STORED),
        incoming(),
        rules(on_duplicate="ignore"),
        KEPT,
    ),
    (
        "overwrite does not move a study to another patient",
        Candidates(patients=(P1,), study=OTHERS_STUDY, duplicate=STORED),
        incoming(),
        rules(on_duplicate="overwrite"),
        STUDY_OWNER,
    ),
    # --- a stored series stays with its study --------------------------------------------
    (
        "the series is filed under another study of the patient",
        Candidates(patients=(P1,), study=OWN_STUDY, series=OTHER_SERIES),
        incoming(),
        rules(),
        SERIES_STUDY,
    ),
    (
        "the series is filed under a study, the object's study is new",
        Candidates(patients=(P1,), series=OTHER_SERIES),
        incoming(),
        rules(),
        SERIES_STUDY,
    ),
    (
        "a new patient's series cannot be a stored one",
        Candidates(series=OTHER_SERIES),
        incoming(),
        rules(),
        SERIES_STUDY,
    ),
    (
        "the study owner answers before the series",
        Candidates(patients=(P1,), study=OTHERS_STUDY, series=OTHER_SERIES),
        incoming(),
        rules(),
        STUDY_OWNER,
    ),
]


@pytest.mark.parametrize(
    ("candidates", "placed", "given", "expected"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_place(candidates: Candidates, placed: Incoming, given: Rules, expected: Placement) -> None:
    assert place(candidates, placed, given) == expected


def test_every_outcome_is_covered() -> None:
    kinds = {type(case[4]) for case in CASES}
    assert kinds == {Attach, Create, Keep, Conflict, Ambiguous, NotFound}
    rules_seen = {case[4].rule for case in CASES if isinstance(case[4], Refusal)}
    assert rules_seen == {
        "patient-matching",
        "patient-id-unique",
        "patient-creation",
        "on-duplicate",
        "study-patient",
        "series-study",
    }


def test_rules_follow_the_configuration() -> None:
    settings = config.from_mapping(
        {"patient_matching": {"birth_date": True}, "storage": {"on_duplicate": "ignore"}}
    )
    given = Rules.from_config(settings)
    assert given.criteria == ("patient_id", "last_name", "first_name", "birth_date")
    assert given.on_duplicate == "ignore"
    assert given.creation == settings.patient_creation
