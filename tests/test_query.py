"""The query model (simdaemon.query) without sockets: what SQL an identifier becomes."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from pydicom.dataset import Dataset

from simdaemon.query import Level, QueryError, Shape, compile_query, matches


def identifier(level: str | None, **keys: Any) -> Dataset:
    ds = Dataset()
    if level is not None:
        ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize("value", ["x' OR '1'='1", "%", "_", "PAT-A'; DROP TABLE patients; --"])
def test_values_only_ever_reach_sql_as_parameters(value: str) -> None:
    query = compile_query(identifier("PATIENT", PatientID=value), "patient")
    harmless = compile_query(identifier("PATIENT", PatientID="PAT1"), "patient")
    assert query.sql == harmless.sql, "the value does not change the statement"
    assert query.params == (value,)


def test_wildcards_become_glob_with_brackets_escaped() -> None:
    query = compile_query(identifier("STUDY", StudyDescription="Head [and]*"), "study")
    assert "s.description GLOB ?" in query.sql
    assert query.params == ("Head [[]and]*",)


def test_person_names_are_folded_and_may_have_more_groups() -> None:
    query = compile_query(identifier("PATIENT", PatientName="DOE^J*"), "patient")
    assert "p.patient_name_key GLOB ?" in query.sql
    assert query.params == ("doe^j*", "doe^j*=*")


def test_uid_lists_and_ranges() -> None:
    uids = compile_query(identifier("STUDY", StudyInstanceUID="1.2\\1.3"), "study")
    assert "s.study_uid IN (?, ?)" in uids.sql
    assert uids.params == ("1.2", "1.3")
    dates = compile_query(identifier("STUDY", StudyDate="20260101-"), "study")
    assert "s.study_date >= ?" in dates.sql
    assert "<=" not in dates.sql
    times = compile_query(identifier("STUDY", StudyTime="-1230"), "study")
    assert times.params == ("1230~",)  # up to 12:30:59.999999


def test_keys_below_the_level_are_returned_empty_and_ignored() -> None:
    query = compile_query(
        identifier("STUDY", PatientID="P1", SeriesInstanceUID="1.2", NumberOfBeams="0"), "study"
    )
    assert query.level is Level.STUDY
    assert query.params == ("P1",)
    assert set(query.ignored) == {"SeriesInstanceUID", "NumberOfBeams"}
    sources = {k.element.keyword: k.source for k in query.keys}
    assert sources["SeriesInstanceUID"] == "empty"
    assert sources["NumberOfBeams"] == "attribute"


def test_stored_rt_keys_and_sequences_filter_in_python() -> None:
    item = Dataset()
    item.ReferencedSOPInstanceUID = "1.2.3"
    query = compile_query(
        identifier("IMAGE", RTPlanLabel="PLAN*", ReferencedRTPlanSequence=[item]), "study"
    )
    assert query.params == ()
    assert len(query.post_filters) == 2
    plan = Dataset()
    plan.RTPlanLabel = "PLAN1"
    dose = Dataset()
    dose.ReferencedRTPlanSequence = [item]
    assert query.post_filters[0](plan)
    assert not query.post_filters[1](plan)
    assert query.post_filters[1](dose)


@pytest.mark.parametrize(
    ("level", "model", "message"),
    [
        (None, "study", "missing Query/Retrieve Level (0008,0052)"),
        ("PATIENT", "study", "level PATIENT is not valid in Study Root"),
        ("WORKLIST", "patient", "unknown Query/Retrieve Level 'WORKLIST'"),
    ],
)
def test_level_errors_are_error_comments(level: str | None, model: str, message: str) -> None:
    with pytest.raises(QueryError) as raised:
        compile_query(identifier(level, PatientID="P1"), model)
    assert str(raised.value) == message
    assert len(str(raised.value)) <= 64


def test_quirks_switch_the_shape() -> None:
    aria = compile_query(identifier("SERIES", StudyDate="", SeriesDescription=""), "study")
    plain = compile_query(
        identifier("SERIES", StudyDate="", SeriesDescription=""),
        "study",
        Shape(aria_series_descriptions=False, series_without_study_keys=False),
    )
    assert "ARIA RadOnc Plans" in aria.sql
    assert "ARIA RadOnc Plans" not in plain.sql
    assert "StudyDate" not in {k.element.keyword for k in aria.keys}
    assert "StudyDate" in {k.element.keyword for k in plain.keys}


@pytest.mark.parametrize(
    ("vr", "query", "stored", "expected"),
    [
        ("SH", "PLAN1", "PLAN1", True),
        ("SH", "PLAN1", "plan1", False),
        ("SH", "PL*1", "PLAN1", True),
        ("SH", "PL?N1", "PLAN1", True),
        ("SH", "PL.N1", "PLAN1", False),  # regular-expression characters are literal
        ("SH", "", "anything", True),
        ("SH", "A\\PLAN1", "PLAN1", True),
        ("DA", "20260101-20260131", "20260115", True),
        ("DA", "20260101-20260131", "20260201", False),
        ("DA", "-20260131", "", False),
        ("PN", "DOE^JOHN", "Doe^John=ドウ^ジョン", True),
    ],
)
def test_python_matching_agrees_with_sql(vr: str, query: str, stored: str, expected: bool) -> None:
    assert matches(vr, query, stored) is expected


def test_sql_compiles_against_the_schema(tmp_path: Any) -> None:
    from simdaemon.archive import Archive

    with Archive(tmp_path / "a") as archive, archive.reading() as db:
        for level, model in [("PATIENT", "patient"), ("STUDY", "study"), ("SERIES", "study"),
                             ("IMAGE", "patient")]:  # fmt: skip
            query = compile_query(
                identifier(level, PatientName="D*", ModalitiesInStudy="CT", PatientAge="",
                           NumberOfStudyRelatedInstances="", ReferringPhysicianName="X*"),
                model,
            )  # fmt: skip
            try:
                assert db.execute(query.sql, query.params).fetchall() == []
            except sqlite3.Error as error:  # pragma: no cover - the failure message
                pytest.fail(f"{level}: {error}\n{query.sql}")
