"""Findings on a running daemon (issue 16): real clients provoke each rule; the daemon records
it in the audit trail (operation ``finding``) and one log line, and refuses the request when
``[findings] fail_on`` says so. Correct clients of the same operations produce no finding.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from pydicom.dataset import Dataset

from simdaemon import Daemon
from simdaemon.audit import AuditEvent
from tests import known as known_archive
from tests import objects, scu
from tests.conftest import CLIENT, MakeDaemon

FINDINGS_LOG = "simdaemon.findings"


def identifier(level: str, **keys: Any) -> Dataset:
    ds = Dataset()
    ds.QueryRetrieveLevel = level
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    return ds


def only_finding(daemon: Daemon, rule: str) -> AuditEvent:
    found = daemon.audit.findings(rule=rule)
    assert len(found) == 1, daemon.audit.describe()
    return found[0]


def logged(caplog: pytest.LogCaptureFixture, rule: str) -> str:
    lines = [r.getMessage() for r in caplog.records if r.name == FINDINGS_LOG]
    matching = [line for line in lines if line.startswith(f"finding {rule} (")]
    assert len(matching) == 1, lines
    assert "; fix: " in matching[0]
    return matching[0]


@pytest.fixture
def known(daemon: Daemon) -> known_archive.Known:
    built = known_archive.build()
    known_archive.store(daemon, built)
    return built


# --- queries and moves ------------------------------------------------------------------------


def test_move_universal_unique_key_is_recorded_beside_the_refusal(
    daemon: Daemon, known: known_archive.Known, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    _, final, _ = scu.move(daemon, identifier("STUDY", StudyInstanceUID=""), "SIMCLIENT")
    assert int(final.Status) == 0xC000
    event = only_finding(daemon, "move-universal-unique-key")
    assert event.outcome == "danger"
    assert event.calling_ae == "SIMCLIENT"
    assert event.detail.startswith("message 1: C-MOVE at STUDY level with StudyInstanceUID empty")
    assert "it would move 3 patients, 4 studies" in event.detail
    assert "fix: send the StudyInstanceUID" in event.detail
    line = logged(caplog, "move-universal-unique-key")
    assert line.startswith("finding move-universal-unique-key (danger) from 'SIMCLIENT': ")


def test_a_universal_move_the_quirk_allows_is_recorded_and_moved(
    make_daemon: MakeDaemon, tmp_path: Any
) -> None:
    daemon = make_daemon(quirks={"move_universal_match": True})
    known_archive.store(daemon, known_archive.build())
    _, final, _ = scu.move(daemon, identifier("STUDY", PatientID="PAT-B"), "SIMCLIENT")
    assert int(final.Status) != 0xC000, "not refused: the quirk asks for the move"
    assert daemon.audit.findings(rule="move-universal-unique-key")


def test_query_missing_parent_unique_key(
    daemon: Daemon, known: known_archive.Known, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    found, final = scu.find(daemon, identifier("SERIES", Modality="CT", SeriesInstanceUID=""))
    assert int(final.Status) == 0x0000, "recorded, not refused by default"
    assert found
    event = only_finding(daemon, "query-missing-parent-unique-key")
    assert event.outcome == "portability"
    assert "C-FIND at SERIES level without StudyInstanceUID (study root)" in event.detail
    logged(caplog, "query-missing-parent-unique-key")


def test_query_matches_ignored_key(
    daemon: Daemon, known: known_archive.Known, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    study = known.uid("plan1", "StudyInstanceUID")
    series = known.uid("plan1", "SeriesInstanceUID")
    query = identifier("IMAGE", StudyInstanceUID=study, SeriesInstanceUID=series,
                       SOPInstanceUID="", NumberOfBeams="0")  # fmt: skip
    found, final = scu.find(daemon, query)
    assert int(final.Status) == 0x0000
    assert found
    event = only_finding(daemon, "query-matches-ignored-key")
    assert "NumberOfBeams='0'" in event.detail
    logged(caplog, "query-matches-ignored-key")


def test_fail_on_portability_refuses_the_query_with_the_finding(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(findings={"fail_on": "portability"})
    known_archive.store(daemon, known_archive.build())
    found, final = scu.find(daemon, identifier("SERIES", Modality="CT"))
    assert found == []
    assert int(final.Status) == 0xC000
    comment = str(final.ErrorComment)
    assert comment.startswith("query-missing-parent-unique-key: C-FIND at SERIES")
    assert len(comment) <= 64
    assert "refused" in only_finding(daemon, "query-missing-parent-unique-key").detail


def test_fail_on_none_records_without_refusing(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(findings={"fail_on": "none"})
    known_archive.store(daemon, known_archive.build())
    _, final = scu.find(daemon, identifier("SERIES", Modality="CT"))
    assert int(final.Status) == 0x0000
    assert daemon.audit.findings(severity="portability")


def test_rules_switched_off_record_nothing(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(findings={"enabled": False})
    known_archive.store(daemon, known_archive.build())
    scu.find(daemon, identifier("SERIES", Modality="CT"))
    assert daemon.audit.findings() == []


def test_a_correct_hierarchical_query_has_no_finding(
    daemon: Daemon, known: known_archive.Known
) -> None:
    study = known.uid("plan1", "StudyInstanceUID")
    found, final = scu.find(daemon, identifier("SERIES", StudyInstanceUID=study, Modality=""))
    assert int(final.Status) == 0x0000
    assert found
    daemon.audit.assert_no_findings("style")


# --- text and character sets --------------------------------------------------------------------


def test_evil_dicom_shift_jis_replay(daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    """Léon stored in UTF-8, then re-sent as Evil DICOM sends it: Shift_JIS bytes (the é
    dropped), Specific Character Set still ISO_IR 192."""
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    first = objects.ct(PatientID="EVIL-1", PatientName="Léon^Marie",
                       SpecificCharacterSet="ISO_IR 192")  # fmt: skip
    (stored,) = scu.store(daemon, [first])
    assert int(stored.Status) == 0x0000
    again = objects.same_patient(first, objects.ct())
    again.SpecificCharacterSet = "ISO_IR 192"
    again.PatientName = "Léon^Marie".encode("shift_jis", errors="ignore").decode("ascii")
    assert str(again.PatientName) == "Lon^Marie"
    (answer,) = scu.store(daemon, [again])
    assert int(answer.Status) == 0xC002
    assert str(answer.ErrorComment) == "name differs only by dropped accents: charset?"
    event = only_finding(daemon, "text-charset-mismatch")
    assert event.outcome == "nonconformant"
    assert "'Lon' is the archive's 'Léon'" in event.detail
    assert logged(caplog, "text-charset-mismatch").startswith(
        "finding text-charset-mismatch (nonconformant) from 'SIMCLIENT': PatientName"
    )


def test_text_not_valid_in_its_declared_charset(daemon: Daemon) -> None:
    ds = objects.ct(PatientID="BAD-UTF8", SpecificCharacterSet="ISO_IR 192")
    ds["PatientName"].value = b"Caf\xe9^Anna"  # Latin-1 bytes, declared UTF-8
    (answer,) = scu.store(daemon, [ds])
    assert int(answer.Status) == 0xB000, "stored with replacement characters, as before"
    event = only_finding(daemon, "text-charset-mismatch")
    assert "(0010,0010) is not valid text in its declared character set ISO_IR 192" in event.detail


def test_store_without_charset_non_ascii(daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    ds = objects.ct(PatientID="NOCHARSET")
    if "SpecificCharacterSet" in ds:
        del ds.SpecificCharacterSet
    ds["PatientName"].value = b"M\xfcller^Hans"
    scu.store(daemon, [ds])
    event = only_finding(daemon, "store-without-charset-non-ascii")
    assert "(0010,0010) has non-ASCII bytes" in event.detail
    logged(caplog, "store-without-charset-non-ascii")


def test_fail_on_nonconformant_refuses_the_store_unstored(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(findings={"fail_on": "nonconformant"})
    ds = objects.ct(PatientID="NOCHARSET")
    if "SpecificCharacterSet" in ds:
        del ds.SpecificCharacterSet
    ds["PatientName"].value = b"M\xfcller^Hans"
    (answer,) = scu.store(daemon, [ds])
    assert int(answer.Status) == 0xC000
    assert str(answer.ErrorComment).startswith("store-without-charset-non-ascii: ")
    assert daemon.archive.audit_events()  # the refusal is in the trail
    assert not daemon.audit.events("store", outcome="success")


def test_accented_names_declared_correctly_have_no_finding(daemon: Daemon) -> None:
    ds = objects.ct(PatientID="GOOD-1", PatientName="Léon^Marie", SpecificCharacterSet="ISO_IR 192")
    (answer,) = scu.store(daemon, [ds])
    assert int(answer.Status) == 0x0000
    again = objects.same_patient(ds, objects.ct())
    again.SpecificCharacterSet = "ISO_IR 192"
    (answer,) = scu.store(daemon, [again])
    assert int(answer.Status) == 0x0000
    daemon.audit.assert_no_findings("style")


def test_assert_no_findings_names_every_finding(daemon: Daemon, known: known_archive.Known) -> None:
    scu.find(daemon, identifier("SERIES", Modality="CT"))
    scu.find(daemon, identifier("IMAGE", SOPInstanceUID=""))
    daemon.audit.assert_no_findings("danger")
    with pytest.raises(AssertionError) as failed:
        daemon.audit.assert_no_findings()
    text = str(failed.value)
    assert "2 finding(s) at least portability" in text
    assert text.count("query-missing-parent-unique-key (portability) from 'SIMCLIENT'") == 2
    assert daemon.audit.findings(severity="danger") == []
    with pytest.raises(ValueError, match="one of style, portability"):
        daemon.audit.findings(severity="fatal")


assert CLIENT["ae_title"] == "SIMCLIENT"
