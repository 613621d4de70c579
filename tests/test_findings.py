"""The findings rules, pure: each one fires on the client bug it names, and not on a correct
request of the same operation."""

from __future__ import annotations

import pytest

from simdaemon import findings as f
from simdaemon.findings import Severity


def query(operation: str, level: str, model: str = "study", **keys: str) -> f.QueryRequest:
    return f.QueryRequest(operation, model, level, keys)


@pytest.mark.parametrize(
    ("keys", "how"),
    [({}, "absent"), ({"StudyInstanceUID": ""}, "empty"), ({"StudyInstanceUID": "1.2.*"}, "wild")],
)
def test_move_universal_unique_key(keys: dict[str, str], how: str) -> None:
    request = f.QueryRequest("move", "study", "STUDY", {"PatientID": "P1", **keys},
                             would_move="3 patients, 78 objects")  # fmt: skip
    finding = f.move_universal_unique_key(request)
    assert finding is not None
    assert finding.severity is Severity.DANGER
    assert how in finding.evidence
    assert finding.evidence.endswith("it would move 3 patients, 78 objects")
    assert f.move_universal_unique_key(query("move", "STUDY", StudyInstanceUID="1.2.3")) is None
    assert f.move_universal_unique_key(query("find", "STUDY")) is None, "C-FIND may be universal"


@pytest.mark.parametrize(
    ("level", "model", "keys", "missing"),
    [
        ("SERIES", "study", {}, "StudyInstanceUID"),
        ("IMAGE", "study", {"StudyInstanceUID": "1.2"}, "SeriesInstanceUID"),
        ("STUDY", "patient", {}, "PatientID"),
        (
            "IMAGE",
            "study",
            {"StudyInstanceUID": "1.*", "SeriesInstanceUID": "1.3"},
            "StudyInstanceUID",
        ),
    ],
)
def test_query_missing_parent_unique_key(
    level: str, model: str, keys: dict[str, str], missing: str
) -> None:
    finding = f.query_missing_parent_unique_key(f.QueryRequest("find", model, level, keys))
    assert finding is not None
    assert finding.severity is Severity.PORTABILITY
    assert f"without {missing}" in finding.evidence


def test_correct_hierarchical_queries_have_no_parent_finding() -> None:
    for request in (
        query("find", "STUDY", PatientID=""),
        query("find", "PATIENT", "patient"),
        query("find", "SERIES", StudyInstanceUID="1.2"),
        query("find", "IMAGE", StudyInstanceUID="1.2", SeriesInstanceUID="1.2.3"),
        query(
            "move", "SERIES", "patient", PatientID="P", StudyInstanceUID="1", SeriesInstanceUID="2"
        ),
    ):
        assert f.query_missing_parent_unique_key(request) is None, request


def test_query_matches_ignored_key_only_when_it_has_a_value() -> None:
    keys = {"NumberOfBeams": "0", "Modality": "RTPLAN", "BodyPartExamined": ""}
    ignored = ("NumberOfBeams", "BodyPartExamined")
    asked = f.QueryRequest("find", "study", "SERIES", keys, ignored=ignored)
    finding = f.query_matches_ignored_key(asked)
    assert finding is not None
    assert "NumberOfBeams='0'" in finding.evidence
    assert "BodyPartExamined" not in finding.evidence
    returned = f.QueryRequest("find", "study", "SERIES", {"NumberOfBeams": ""},
                              ignored=("NumberOfBeams",))  # fmt: skip
    assert f.query_matches_ignored_key(returned) is None


@pytest.mark.parametrize(
    ("incoming", "stored", "expected"),
    [
        ("Lon", "Léon", True),
        ("L?on", "Léon", True),
        ("M?ller^J?rgen", "Müller^Jürgen", True),
        ("Léon", "Léon", False),
        ("Leon", "Léon", False),  # a transliteration, not an encoder's loss
        ("Lxon", "Léon", False),
        ("Lo", "Léon", False),
        ("Smith", "Smyth", False),
    ],
)
def test_replaced_or_dropped(incoming: str, stored: str, expected: bool) -> None:
    assert f.replaced_or_dropped(incoming, stored) is expected


def test_text_charset_mismatch_names_both_causes() -> None:
    evil = f.TextValue("PatientName", ("ISO_IR 192",), True, "Lon^Marie", stored="Léon^Marie")
    finding = f.text_charset_mismatch(evil)
    assert finding is not None
    assert "replaced by '?' or dropped" in finding.evidence
    broken = f.TextValue("PatientName", ("ISO 2022 IR 87",), False, "\ufffd")
    finding = f.text_charset_mismatch(broken)
    assert finding is not None
    assert "not valid text in its declared character set ISO 2022 IR 87" in finding.evidence
    same = f.TextValue("PatientName", ("ISO_IR 192",), True, "Léon^Marie", stored="Léon^Marie")
    assert f.text_charset_mismatch(same) is None


def test_store_without_charset_non_ascii() -> None:
    assert f.store_without_charset_non_ascii(f.TextValue("PatientName", (), True, "Müller",
                                                         non_ascii=True)) is not None  # fmt: skip
    assert f.store_without_charset_non_ascii(f.TextValue("PatientName", (), True, "Muller")) is None
    declared = f.TextValue("PatientName", ("ISO_IR 100",), True, "Müller", non_ascii=True)
    assert f.store_without_charset_non_ascii(declared) is None


def test_overlapping_dimse_respects_the_negotiated_window() -> None:
    assert f.overlapping_dimse(0) is None
    finding = f.overlapping_dimse(1)
    assert finding is not None
    assert finding.severity is Severity.NONCONFORMANT
    assert f.overlapping_dimse(1, async_window=2) is None


def test_association_end_rules() -> None:
    aborted = f.AssociationEnd(True, 2, ("CT", "MR", "RTPLAN"), ("CT",))
    assert f.abort_instead_of_release(aborted) is not None
    assert f.abort_instead_of_release(f.AssociationEnd(True, 0)) is None, "nothing was done"
    assert f.abort_instead_of_release(f.AssociationEnd(False, 2)) is None
    unused = f.unused_presentation_contexts(aborted)
    assert unused is not None
    assert "2 accepted presentation context(s)" in unused.evidence
    assert f.unused_presentation_contexts(f.AssociationEnd(False, 1, ("CT",), ("CT",))) is None


def test_churn_counts_per_ae_within_the_window() -> None:
    window = f.ChurnWindow(limit=3)
    counts = [window.opened("SCRIPT", t) for t in (0.0, 0.2, 0.4, 0.6, 1.5)]
    assert counts == [1, 2, 3, 4, 2]
    assert window.opened("OTHER", 1.5) == 1
    assert f.association_per_request_churn("SCRIPT", 4, 3) is not None
    assert f.association_per_request_churn("SCRIPT", 3, 3) is None


def test_refused_contexts_say_what_to_do_instead() -> None:
    implicit = ("1.2.840.10008.1.2",)
    get = f.ContextProposal("1.2.840.10008.5.1.4.1.2.2.3", "Study Root GET", implicit,
                            "abstract-syntax")  # fmt: skip
    finding = f.refused_presentation_context(get)
    assert finding is not None
    assert "no C-GET; use C-MOVE" in finding.fix
    big = f.ContextProposal("1.2.840.10008.5.1.4.1.1.2", "CT Image Storage",
                            ("1.2.840.10008.1.2.2",), "transfer-syntax")  # fmt: skip
    finding = f.refused_presentation_context(big)
    assert finding is not None
    assert "Little Endian" in finding.fix


def test_move_to_self_without_listener() -> None:
    failure = f.MoveFailure("SCRIPT", "SCRIPT", "127.0.0.1:11112", refused=True)
    finding = f.move_destination_is_requester_without_listener(failure)
    assert finding is not None
    assert "127.0.0.1:11112" in finding.fix
    other = f.MoveFailure("SCRIPT", "PACS", "127.0.0.1:11112", refused=True)
    assert f.move_destination_is_requester_without_listener(other) is None


def test_every_rule_is_documented_with_why_and_fix() -> None:
    assert len(f.RULES) == 11
    for name, rule in f.RULES.items():
        assert rule.name == name
        assert "*Why*" in rule.doc, name
        assert "*Fix*" in rule.doc, name


def test_severity_parses_names_and_explains_bad_ones() -> None:
    assert Severity.parse("Portability") is Severity.PORTABILITY
    assert Severity.DANGER > Severity.NONCONFORMANT > Severity.PORTABILITY > Severity.STYLE
    with pytest.raises(ValueError, match="one of style, portability, nonconformant, danger"):
        Severity.parse("fatal")


def test_refused_contexts_one_finding_per_class_and_storage_summed_up() -> None:
    get = f.ContextProposal("1.2.840.10008.5.1.4.1.2.2.3", "Study Root GET", ["Implicit"],
                            "abstract-syntax")  # fmt: skip
    big = f.ContextProposal("1.2.840.10008.5.1.4.1.1.2", "CT Image Storage", ["Big Endian"],
                            "transfer-syntax")  # fmt: skip
    ecg = [
        f.ContextProposal(
            f"1.2.840.10008.5.1.4.1.1.9.1.{n}", f"ECG {n}", ["Implicit"], "abstract-syntax"
        )
        for n in (1, 2, 3, 4)
    ]
    found = f.refused_contexts([get, get, big, *ecg, ecg[0]])
    assert [(x.rule, x.severity) for x in found] == [
        ("refused-presentation-context", Severity.PORTABILITY),
        ("refused-presentation-context", Severity.PORTABILITY),
        ("refused-presentation-context", Severity.STYLE),
    ]
    assert "no C-GET" in found[0].fix
    assert "Explicit or Implicit VR Little Endian" in found[1].fix
    assert found[2].evidence.endswith("refused: ECG 1, ECG 2, ECG 3 and 1 more")
    assert f.refused_contexts([]) == []


def test_the_audit_trail_orders_severities_as_the_rules_do() -> None:
    from simdaemon.audit import SEVERITIES

    assert tuple(str(s) for s in sorted(Severity)) == SEVERITIES
