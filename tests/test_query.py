"""The query model (simdaemon.query) without sockets or SQL: what an identifier asks for."""

from __future__ import annotations

from typing import Any

import pytest
from pydicom.dataset import Dataset

from simdaemon.query import (
    AnyOf,
    Constraint,
    Level,
    QueryError,
    Range,
    SequenceMatch,
    Shape,
    Single,
    StoredMatch,
    ValueList,
    Wildcard,
    compile_query,
    matches,
)


def identifier(level: str | None, **keys: Any) -> Dataset:
    ds = Dataset()
    if level is not None:
        ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


@pytest.mark.parametrize(
    ("level", "keys", "constraint"),
    [
        ("PATIENT", {"PatientID": "PAT1"}, Constraint("PatientID", Single("PAT1"))),
        ("PATIENT", {"PatientID": "PAT_1%"}, Constraint("PatientID", Single("PAT_1%"))),
        ("STUDY", {"StudyDescription": "Head [and]*"},
         Constraint("StudyDescription", Wildcard("Head [and]*"))),
        ("STUDY", {"StudyInstanceUID": "1.2\\1.3"},
         Constraint("StudyInstanceUID", ValueList(("1.2", "1.3")))),
        ("STUDY", {"StudyDate": "20260101-"}, Constraint("StudyDate", Range("20260101", ""))),
        ("STUDY", {"StudyTime": "-1230"}, Constraint("StudyTime", Range("", "1230"))),
        # PN: folded; one component group may be stored with more after "=".
        ("PATIENT", {"PatientName": "DOE^J*"},
         Constraint("PatientName", AnyOf((Wildcard("doe^j*"), Wildcard("doe^j*=*"))), True)),
        ("PATIENT", {"PatientName": "Doe^John"},
         Constraint("PatientName", AnyOf((Single("doe^john"), Wildcard("doe^john=*"))), True)),
        ("PATIENT", {"PatientName": "Doe^John=X"},
         Constraint("PatientName", Single("doe^john=x"), True)),
        # A PN list is compared as stored, like any list.
        ("PATIENT", {"PatientName": "Doe^John\\Roe^Jane"},
         Constraint("PatientName", ValueList(("Doe^John", "Roe^Jane")))),
        ("STUDY", {"ModalitiesInStudy": "CT"}, Constraint("ModalitiesInStudy", ValueList(("CT",)))),
    ],
)  # fmt: skip
def test_valued_keys_become_typed_constraints(
    level: str, keys: dict[str, str], constraint: Constraint
) -> None:
    query = compile_query(identifier(level, **keys), "patient")
    assert query.constraints == (constraint,)
    assert query.matched == tuple(keys)


def test_empty_keys_are_universal_returned_but_not_constraints() -> None:
    query = compile_query(identifier("STUDY", PatientID="", StudyDate="", StudyID=""), "study")
    assert query.constraints == ()
    assert {k.element.keyword for k in query.keys} == {"PatientID", "StudyDate", "StudyID"}
    assert {k.source for k in query.keys} == {"index"}


def test_keys_below_the_level_are_returned_empty_and_ignored() -> None:
    query = compile_query(
        identifier("STUDY", PatientID="P1", SeriesInstanceUID="1.2", NumberOfBeams="0"), "study"
    )
    assert query.level is Level.STUDY
    assert query.constraints == (Constraint("PatientID", Single("P1")),)
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
    assert query.constraints == ()
    label, sequence = query.post_filters
    assert label == StoredMatch("RTPlanLabel", "SH", "PLAN*")
    assert isinstance(sequence, SequenceMatch)
    plan = Dataset()
    plan.RTPlanLabel = "PLAN1"
    dose = Dataset()
    dose.ReferencedRTPlanSequence = [item]
    assert label(plan)
    assert not sequence(plan)
    assert sequence(dose)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"PatientID": "P" * 65}, "PatientID longer than 64 chars (LO)"),
        ({"StudyID": "S" * 17}, "StudyID longer than 16 chars (SH)"),
        ({"StudyDate": "202601011-"}, "StudyDate longer than 8 chars (DA)"),
        ({"PatientName": "D" * 65}, "PatientName longer than 64 chars per component group (PN)"),
        ({"RTPlanLabel": "*a" * 9}, "RTPlanLabel longer than 16 chars (SH)"),
        ({"StudyInstanceUID": "1.2\\" + "1" * 65}, "StudyInstanceUID longer than 64 chars (UI)"),
    ],
)
@pytest.mark.filterwarnings("ignore:The .*length")  # pydicom warns of the same, as it should
@pytest.mark.filterwarnings("ignore:Invalid value for VR DA")
def test_keys_longer_than_their_vr_are_refused_by_name(keys: dict[str, str], message: str) -> None:
    with pytest.raises(QueryError) as raised:
        compile_query(identifier("IMAGE", **keys), "study")
    assert str(raised.value) == message
    assert len(str(raised.value)) <= 64


@pytest.mark.parametrize(
    "keys",
    [
        {"PatientID": "P" * 64},
        {"StudyDate": "20260101-20261231"},
        {"StudyTime": "120000.000000-235959.999999"},
        {"PatientName": "D" * 64 + "=" + "I" * 64},
        {"RTPlanLabel": "*a*a*a*a*a*a*a*b"},
    ],
)
def test_keys_at_their_vr_limit_are_accepted(keys: dict[str, str]) -> None:
    assert compile_query(identifier("IMAGE", **keys), "study").matched == tuple(keys)


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
    keys = identifier("SERIES", StudyDate="", SeriesDescription="")
    aria = compile_query(keys, "study")
    plain = compile_query(keys, "study", Shape(aria_series_descriptions=False,
                                               series_without_study_keys=False))  # fmt: skip
    assert aria.shape == Shape()
    assert plain.shape.aria_series_descriptions is False
    assert "StudyDate" not in {k.element.keyword for k in aria.keys}
    assert "StudyDate" in {k.element.keyword for k in plain.keys}


def test_quirk_rules_derive_study_ids_and_series_descriptions() -> None:
    aria, plain = Shape(), Shape(course_id_as_study_id=False, aria_series_descriptions=False)
    assert aria.derived == {"StudyID", "SeriesDescription"}
    assert plain.derived == set()
    assert (aria.study_id("", 2), aria.study_id("X", 2)) == ("C2", "X")
    assert plain.study_id("", 2) == ""
    assert aria.series_description("RTPLAN", "plans") == "ARIA RadOnc Plans"
    assert aria.series_description("REG", "") == "Image Registration"
    assert aria.series_description("CT", "CT Planning") == "CT Planning"
    assert plain.series_description("RTPLAN", "plans") == "plans"


def test_quirks_say_where_a_derived_value_may_match() -> None:
    aria = Shape()
    radonc = Constraint("SeriesDescription", Wildcard("ARIA RadOnc*"))
    assert aria.derivable(radonc) == (Constraint("Modality", ValueList(("RTPLAN", "RTSTRUCT"))),)
    assert aria.derivable(Constraint("SeriesDescription", Single("CT"))) == ()
    assert aria.derivable(Constraint("StudyID", Single("C2"))) == (
        Constraint("StudyID", Single("")),
    )
    assert Shape(course_id_as_study_id=False).derivable(Constraint("StudyID", Single("C2"))) == ()


@pytest.mark.parametrize(
    ("constraint", "stored", "expected"),
    [
        (Constraint("PatientID", Single("PAT1")), "PAT1", True),
        (Constraint("PatientID", Single("PAT1")), "pat1", False),
        (Constraint("PatientID", Wildcard("P?T*")), "PAT1", True),
        (Constraint("PatientID", Wildcard("P%")), "PAT1", False),  # % and _ are no wildcards
        (Constraint("PatientID", Wildcard("P[A]*")), "P[A]T", True),  # [ is literal
        (Constraint("PatientID", Wildcard("P[A]*")), "PAT", False),
        (Constraint("StudyInstanceUID", ValueList(("1.2", "1.3"))), "1.3", True),
        (Constraint("StudyInstanceUID", ValueList(("1.*", "1.3"))), "1.2", False),  # no wildcard
        (Constraint("StudyInstanceUID", ValueList(("", ""))), "1.2", False),  # "\\": not all
        (Constraint("StudyDate", Range("20260101", "")), "20260102", True),
        (Constraint("StudyDate", Range("20260101", "")), "", False),
        (Constraint("StudyTime", Range("", "1230")), "123045", True),
        (Constraint("StudyTime", Range("", "1230")), "1231", False),
        (Constraint("PatientName", AnyOf((Single("doe^john"), Wildcard("doe^john=*"))), True),
         "DOE^John=ドウ^ジョン", True),
        (Constraint("PatientName", Single("doe^john"), True), "DOE^John=ドウ^ジョン", False),
    ],
)  # fmt: skip
def test_constraints_accept_stored_values(
    constraint: Constraint, stored: str, expected: bool
) -> None:
    assert constraint.accepts(stored) is expected


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
