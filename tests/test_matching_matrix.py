"""SPEC section 5 step 3 over every combination of the matching switches and creation on/off.

Each combination runs against a real daemon over C-STORE. The archive is seeded under the
default rules with two patients that differ only in Patient ID, then a daemon with the
combination under test receives probes that each change one demographic. The expected
outcome is worked out here from the SPEC's wording, independently of simdaemon.matching.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from tests import objects, scu
from tests.conftest import MakeDaemon

SWITCHES = ("patient_id", "patient_id2", "last_name", "first_name", "birth_date")
STORED = {
    "P1": {"id": "P1", "id2": "X1", "last": "Doe", "first": "John", "birth": "19600101"},
    "P2": {"id": "P2", "id2": "X1", "last": "Doe", "first": "John", "birth": "19600101"},
}
CRITERION = {"patient_id": "id", "patient_id2": "id2", "last_name": "last", "first_name": "first",
             "birth_date": "birth"}  # fmt: skip

#: (name, changes to P1's demographics); the one creating a patient comes last.
PROBES = [
    ("same as P1", {}),
    ("names in other case, ID padded", {"last": "DOE", "first": "john", "id": "P1 "}),
    ("other Patient ID 2", {"id2": "X9"}),
    ("other last name", {"last": "Smith"}),
    ("other first name", {"first": "Jane"}),
    ("other birth date", {"birth": "19700101"}),
    ("new Patient ID", {"id": "P9"}),
]

COMBINATIONS = [
    (dict(zip(SWITCHES, flags, strict=True)), automatic)
    for flags in itertools.product([True, False], repeat=len(SWITCHES))
    for automatic in (True, False)
]


def _id(combination: tuple[dict[str, bool], bool]) -> str:
    switches, automatic = combination
    on = "+".join(name for name, flag in switches.items() if flag) or "none"
    return f"{on}-{'create' if automatic else 'nocreate'}"


def _object(demographics: dict[str, str]) -> Dataset:
    ds = objects.ct(
        PatientID=demographics["id"],
        OtherPatientIDs=demographics["id2"],
        PatientName=f"{demographics['last']}^{demographics['first']}",
        PatientBirthDate=demographics["birth"],
    )
    return ds


def expected(probe: dict[str, str], switches: dict[str, bool], automatic: bool) -> tuple[int, str]:
    """(status, patient it lands on) as SPEC section 5 step 3 words it."""

    def norm(field: str, value: str) -> str:
        return value.strip().casefold() if field in ("last", "first") else value.strip()

    enabled = [CRITERION[name] for name, on in switches.items() if on]
    agreeing = [
        key
        for key, stored in STORED.items()
        if all(norm(f, probe[f]) == norm(f, stored[f]) for f in enabled)
    ]
    if len(agreeing) == 1:
        return 0x0000, agreeing[0]
    if len(agreeing) > 1:
        return 0xC003, ""
    if probe["id"].strip() in STORED:
        return 0xC002, ""
    return (0x0000, probe["id"]) if automatic else (0xC001, "")


COMMENT_WORDS = {
    0xC001: "automatic creation is off",
    0xC002: "Patient ID conflict",
    0xC003: "more than one stored patient matches",
}


@pytest.mark.parametrize("combination", COMBINATIONS, ids=[_id(c) for c in COMBINATIONS])
def test_matching_combination(
    make_daemon: MakeDaemon, tmp_path: Path, combination: tuple[dict[str, bool], bool]
) -> None:
    switches, automatic = combination
    seeding = make_daemon()
    seeded = [_object(STORED["P1"]), _object(STORED["P2"])]
    assert [scu.status_of(a) for a in scu.store(seeding, seeded)] == [(0, ""), (0, "")]
    seeding.stop()

    daemon = make_daemon(
        patient_matching=switches, patient_creation={"automatic": automatic,
        "hospital": "UAB", "department": "Radiation Oncology"},
    )  # fmt: skip
    failed_folder = tmp_path / "failed"
    for name, changes in PROBES:
        probe = {**STORED["P1"], **changes}
        want_status, want_patient = expected(probe, switches, automatic)
        ds = _object(probe)
        parked_before = set(failed_folder.glob("*.dcm"))
        patients_before = {p.patient_id for p in daemon.archive.patients()}

        (answer,) = scu.store(daemon, [ds])
        got_status, comment = scu.status_of(answer)

        assert got_status == want_status, f"{name}: {comment}"
        stored = daemon.archive.instance(ds.SOPInstanceUID)
        patients_after = {p.patient_id for p in daemon.archive.patients()}
        parked = set(failed_folder.glob("*.dcm")) - parked_before
        if want_status == 0x0000:
            assert comment == ""
            assert stored is not None, name
            assert stored.patient_id == want_patient, name
            assert stored.path.is_file()
            assert not parked
            created = patients_after - patients_before
            if want_patient in STORED:
                assert not created, name
            else:
                assert created == {want_patient}, name
                (row,) = [p for p in daemon.archive.patients() if p.patient_id == want_patient]
                assert (row.hospital, row.department) == ("UAB", "Radiation Oncology")
        else:
            assert COMMENT_WORDS[want_status] in comment, name
            assert stored is None, name
            assert patients_after == patients_before, name
            (parked_file,) = parked
            reason = parked_file.with_name(parked_file.stem + ".reason.txt").read_text()
            assert f"status: 0x{want_status:04X}" in reason
            assert "rule: " in reason
            assert ds.SOPInstanceUID in reason
            if want_status == 0xC002:
                assert "values compared" in reason
