"""The archive's lookup (simdaemon.lookup) without sockets: the SQL a query becomes, the rows.

Unit tests of the one module that turns :mod:`simdaemon.query`'s constraints into SQL: values
only ever as parameters, the statements valid against the schema, typed rows by name, and the
SQL agreeing with the Python matcher (:meth:`Constraint.accepts`) value for value.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from simdaemon import lookup
from simdaemon.archive import Archive, NewInstance, NewSeries, NewStudy
from simdaemon.matching import Demographics
from simdaemon.query import Extent, Shape, compile_query
from tests import scu


def sql(level: str, model: str = "patient", **keys: Any) -> lookup.Statement:
    return lookup.select(compile_query(scu.identifier(level, **keys), model))


@pytest.mark.parametrize("value", ["x' OR '1'='1", "%", "_", "PAT-A'; DROP TABLE patients; --"])
def test_values_only_ever_reach_sql_as_parameters(value: str) -> None:
    statement = sql("PATIENT", PatientID=value)
    assert statement.sql == sql("PATIENT", PatientID="PAT1").sql, "the value is no SQL"
    assert statement.params == (value,)


def test_wildcards_become_glob_with_brackets_escaped() -> None:
    statement = sql("STUDY", StudyDescription="Head [and]*")
    assert "s.description GLOB ?" in statement.sql
    assert statement.params == ("Head [[]and]*",)


def test_person_names_match_the_folded_column_and_may_have_more_groups() -> None:
    statement = sql("PATIENT", PatientName="DOE^J*")
    assert "p.patient_name_key GLOB ?" in statement.sql
    assert statement.params == ("doe^j*", "doe^j*=*")
    referring = sql("STUDY", ReferringPhysicianName="X")  # no folded column: folded in SQL
    assert "casefold(s.referring_physician) = ?" in referring.sql


def test_uid_lists_and_ranges() -> None:
    uids = sql("STUDY", StudyInstanceUID="1.2\\1.3")
    assert "s.study_uid IN (?, ?)" in uids.sql
    assert uids.params == ("1.2", "1.3")
    dates = sql("STUDY", StudyDate="20260101-")
    assert "s.study_date >= ?" in dates.sql
    assert "<=" not in dates.sql
    assert sql("STUDY", StudyTime="-1230").params == ("1230~",)  # up to 12:30:59.999999


def test_only_asked_fields_are_selected() -> None:
    statement = sql("SERIES", "study", StudyInstanceUID="1.2", Modality="")
    columns = statement.sql.split(" FROM ")[0]
    assert columns == "SELECT s.study_uid, r.modality"
    assert sql("STUDY", "study").sql.startswith("SELECT 1 FROM studies s")


def test_sql_compiles_against_the_schema(tmp_path: Path) -> None:
    with Archive(tmp_path / "a") as archive, archive.reading() as db:
        for level, model in [("PATIENT", "patient"), ("STUDY", "study"), ("SERIES", "study"),
                             ("IMAGE", "patient")]:  # fmt: skip
            statement = sql(
                level, model, PatientName="D*", ModalitiesInStudy="CT", PatientAge="",
                NumberOfStudyRelatedInstances="", ReferringPhysicianName="X*", StudyID="C1",
                SeriesDescription="ARIA*", NumberOfPatientRelatedInstances="",
            )  # fmt: skip
            try:
                assert db.execute(statement.sql, statement.params).fetchall() == []
            except sqlite3.Error as error:  # pragma: no cover - the failure message
                pytest.fail(f"{level}: {error}\n{statement.sql}")


# --- against an archive ------------------------------------------------------------------------

#: Stored (Patient ID, Patient Name, birth date): values that mean something to SQL or to
#: wildcards, case, and names with a second component group.
PATIENTS = [
    ("PAT1", "Doe^John", "19600101"),
    ("pat1", "DOE^JOHN=ドウ^ジョン", "19600102"),
    ("PAT_1", "doe^jane", ""),
    ("PAT%1", "Roe^Jane", "19751231"),
    ("P[A]T", "Müller^Jürgen", "20000229"),
    ("P\\T", "MÜLLER^JÜRGEN", "19991231"),
    ("", "", ""),
]


@pytest.fixture
def archive(tmp_path: Path) -> Iterator[Archive]:
    with Archive(tmp_path / "a") as archive:
        with archive.transaction() as tx:
            for number, (patient_id, name, birth) in enumerate(PATIENTS):
                demographics = Demographics.from_values(patient_id, [], name, birth)
                patient = tx.add_patient(demographics, name, "O", "", "")
                study = tx.add_study(patient, NewStudy(f"1.2.{number}"))
                series = tx.add_series(study, NewSeries(f"1.2.{number}.1", modality="CT"))
                instance = NewInstance(f"1.2.{number}.1.1", "1.2.3", "1.2.840.10008.1.2.1")
                tx.index_instance(series, instance, f"files/{number}.dcm", b"")
        yield archive


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("PatientID", "PAT1"),
        ("PatientID", "PAT?1"),
        ("PatientID", "P*"),
        ("PatientID", "PAT%1"),
        ("PatientID", "P[A]*"),
        ("PatientID", "P\\T"),  # a list of two values: "P" and "T"
        ("PatientID", "PAT1\\pat1"),
        ("PatientName", "doe^john"),
        ("PatientName", "DOE*"),
        ("PatientName", "d?e^j*"),
        ("PatientName", "doe^john=ドウ^ジョン"),
        ("PatientName", "müller^jürgen"),
        ("PatientName", "Doe^John\\doe^jane"),
        ("PatientBirthDate", "19600101-19751231"),
        ("PatientBirthDate", "-19991231"),
        ("PatientBirthDate", "20000101-"),
        ("PatientBirthDate", "19600101"),
    ],
)
def test_sql_and_python_matching_agree(archive: Archive, keyword: str, value: str) -> None:
    keys = {"PatientID": "", keyword: value}
    query = compile_query(scu.identifier("PATIENT", **keys), "patient")
    (constraint,) = query.constraints
    column = {"PatientID": 0, "PatientName": 1, "PatientBirthDate": 2}[keyword]
    expected = {p[0] for p in PATIENTS if constraint.accepts(p[column])}
    found = [row.patient_id for row in lookup.find(archive, query)]
    assert sorted(map(str, found)) == sorted(expected)


def test_rows_carry_the_asked_fields_by_name(archive: Archive) -> None:
    query = compile_query(
        scu.identifier("IMAGE", PatientID="PAT1", SOPInstanceUID="", NumberOfStudyRelatedSeries=""),
        "patient",
    )
    (row,) = lookup.find(archive, query)
    assert isinstance(row, lookup.IndexRow)
    assert (row.patient_id, row.sop_instance_uid, row.study_series) == ("PAT1", "1.2.0.1.1", 1)
    assert row.value("SOPInstanceUID") == row.sop_instance_uid
    assert row.patient_name is None, "a field no key asks for is not read"
    assert row.stored is None, "no key or filter needs the stored attributes"


def test_a_move_takes_what_find_lists_and_counts_it(archive: Archive) -> None:
    query = compile_query(scu.identifier("STUDY", PatientID="PAT*"), "patient")
    studies = list(lookup.find(archive, compile_query(
        scu.identifier("STUDY", PatientID="PAT*", StudyInstanceUID=""), "patient")))  # fmt: skip
    moved = list(lookup.instances(archive, query))
    assert [m.sop_instance_uid for m in moved] == sorted(f"{s.study_uid}.1.1" for s in studies)
    assert moved[0].path == archive.folder / "files" / "0.dcm"
    assert lookup.extent(archive, query) == Extent(3, 3, 3, 3)


def test_stopping_early_returns_the_connection(archive: Archive) -> None:
    query = compile_query(scu.identifier("PATIENT", PatientID=""), "patient")
    for _ in range(20):  # more than a pool would hold if each abandoned search kept one
        rows = lookup.find(archive, query)
        next(rows)
        rows.close()
    assert archive._readers.qsize() == 1


# --- the response shape's quirks, matched on the values answered --------------------------------


@pytest.fixture
def courses(tmp_path: Path) -> Iterator[Archive]:
    """One patient: courses without StudyID, with one ("X"), without; RT and CT series."""
    with Archive(tmp_path / "c") as archive:
        with archive.transaction() as tx:
            patient = tx.add_patient(Demographics("PAT"), "Doe^John", "O", "", "")
            for number, study_id in enumerate(["", "X", ""], start=1):
                study = tx.add_study(patient, NewStudy(f"1.{number}", study_id=study_id))
                for modality, description in [("RTPLAN", "plan"), ("CT", "ARIA RadOnc Plans")]:
                    series_uid = f"1.{number}.{modality}"
                    series = tx.add_series(
                        study, NewSeries(series_uid, modality=modality, description=description)
                    )
                    instance = NewInstance(f"{series_uid}.1", "1.2.3", "1.2.840.10008.1.2.1")
                    tx.index_instance(series, instance, f"files/{series_uid}.dcm", b"")
        yield archive


PLAIN = Shape(course_id_as_study_id=False, aria_series_descriptions=False)


@pytest.mark.parametrize(
    ("study_id", "shape", "expected"),
    [
        ("C3", Shape(), ["1.3"]),
        ("C2", Shape(), []),  # the second course has its own StudyID
        ("X", Shape(), ["1.2"]),
        ("C*", Shape(), ["1.1", "1.3"]),
        ("C1\\X", Shape(), ["1.1", "1.2"]),
        ("C3", PLAIN, []),
        ("X", PLAIN, ["1.2"]),
    ],
)
def test_course_ids_are_answered_and_matched(
    courses: Archive, study_id: str, shape: Shape, expected: list[str]
) -> None:
    keys = scu.identifier("STUDY", StudyID=study_id, StudyInstanceUID="")
    rows = list(lookup.find(courses, compile_query(keys, "study", shape)))
    assert sorted(str(row.study_uid) for row in rows) == expected
    answered = {"1.1": "C1", "1.2": "X", "1.3": "C3"} if shape == Shape() else {"1.2": "X"}
    assert all(row.study_id == answered.get(str(row.study_uid), "") for row in rows)
    move = compile_query(scu.identifier("IMAGE", StudyID=study_id), "study", shape)
    moved = {m.sop_instance_uid.split(".")[1] for m in lookup.instances(courses, move)}
    assert sorted(f"1.{number}" for number in moved) == expected
    assert lookup.extent(courses, move) == Extent(
        len(expected) and 1, len(expected), 2 * len(expected), 2 * len(expected)
    )


@pytest.mark.parametrize(
    ("description", "shape", "expected"),
    [
        ("ARIA RadOnc Plans", Shape(), {"RTPLAN", "CT"}),  # CT: as stored
        ("ARIA*", Shape(), {"RTPLAN", "CT"}),
        ("plan", Shape(), set()),  # the plans' stored description is not answered
        ("ARIA RadOnc Plans", PLAIN, {"CT"}),
        ("plan", PLAIN, {"RTPLAN"}),
    ],
)
def test_aria_series_descriptions_are_answered_and_matched(
    courses: Archive, description: str, shape: Shape, expected: set[str]
) -> None:
    keys = scu.identifier("SERIES", StudyInstanceUID="1.1", SeriesDescription=description,
                      Modality="")  # fmt: skip
    rows = list(lookup.find(courses, compile_query(keys, "study", shape)))
    assert {row.modality for row in rows} == expected
    for row in rows:
        assert row.series_description == (
            "ARIA RadOnc Plans" if shape == Shape() or row.modality == "CT" else "plan"
        )


def test_no_quirk_is_written_in_sql() -> None:
    for shape in (Shape(), PLAIN):
        keys = scu.identifier("SERIES", StudyID="C1", SeriesDescription="ARIA*", Modality="")
        statement = lookup.select(compile_query(keys, "study", shape))
        assert "CASE" not in statement.sql
        assert "ARIA" not in statement.sql
