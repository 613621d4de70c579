"""Findings on a running daemon (issue 16): real clients provoke each rule; the daemon records
it in the audit trail (operation ``finding``) and one log line, and refuses the request when
``[findings] fail_on`` says so. Correct clients of the same operations produce no finding.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom.dimse_primitives import C_FIND
from pynetdicom.dsutils import encode

from simdaemon import Daemon
from simdaemon.audit import AuditEvent
from simdaemon.config import Config, ConfigError, example, loads
from simdaemon.synthetic import synthetic_patient
from tests import known as known_archive
from tests import objects, scu, test_dcmtk
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


# --- associations -------------------------------------------------------------------------------

FIND = "1.2.840.10008.5.1.4.1.2.2.1"
GET = "1.2.840.10008.5.1.4.1.2.2.3"
VERIFICATION = "1.2.840.10008.1.1"
BIG_ENDIAN = "1.2.840.10008.1.2.2"
CT = "1.2.840.10008.5.1.4.1.1.2"


def test_refused_presentation_contexts_are_findings(
    daemon: Daemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    assoc = scu.associate(daemon, contexts=[(VERIFICATION, None), (GET, None), (CT, [BIG_ENDIAN])])
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0
    assoc.release()
    found = daemon.audit.findings(rule="refused-presentation-context")
    details = " | ".join(e.detail for e in found)
    assert len(found) == 2, details
    assert "the daemon has no C-GET; use C-MOVE to a trusted entity" in details
    assert "CT Image Storage refused: none of Explicit VR Big Endian is acceptable" in details
    assert "propose Explicit or Implicit VR Little Endian" in details
    logged_lines = [r.getMessage() for r in caplog.records if r.name == FINDINGS_LOG]
    assert sum("refused-presentation-context (portability)" in x for x in logged_lines) == 2


def test_abort_instead_of_release(daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    assoc = scu.associate(daemon)
    assert assoc.send_c_echo().Status == 0
    assoc.abort()
    event = daemon.audit.wait_for("finding", outcome="style")
    assert event.rule == "abort-instead-of-release"
    assert "aborted the association after 1 completed request(s)" in event.detail
    logged(caplog, "abort-instead-of-release")


def test_an_abort_before_any_request_is_no_finding(daemon: Daemon) -> None:
    assoc = scu.associate(daemon)
    assoc.abort()
    daemon.audit.wait_for("associate", outcome="accepted")
    # Then an association whose end surely makes a finding, to wait on: by then the abort,
    # received long before, has been handled.
    assoc = scu.associate(daemon, contexts=[(VERIFICATION, None), (FIND, None)])
    assert assoc.send_c_echo().Status == 0
    assoc.release()
    daemon.audit.wait_for("finding", outcome="style")
    assert [e.rule for e in daemon.audit.findings()] == ["unused-presentation-contexts"]


def test_unused_presentation_contexts(daemon: Daemon, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    assoc = scu.associate(daemon, contexts=[(VERIFICATION, None), (FIND, None)])
    assert assoc.send_c_echo().Status == 0
    assoc.release()
    event = daemon.audit.wait_for("finding", outcome="style")  # recorded once released
    assert event.rule == "unused-presentation-contexts"
    logged(caplog, "unused-presentation-contexts")
    assert "1 accepted presentation context(s) never used: Study Root Query/Retrieve" in (
        event.detail
    )


def test_association_per_request_churn(
    make_daemon: MakeDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    daemon = make_daemon(findings={"churn_per_second": 2})
    for _ in range(4):  # bounded; 4 within one second on loopback, whatever the machine
        assoc = scu.associate(daemon)
        assert assoc.send_c_echo().Status == 0
        assoc.release()
    found = daemon.audit.findings(rule="association-per-request-churn")
    if found:
        logged(caplog, "association-per-request-churn")
    if not found:  # a machine so slow that the four took more than a second
        pytest.skip("associations were not opened within one second")
    assert len(found) == 1, "once per burst"
    assert "'SIMCLIENT' opened 3 associations within a second (more than 2)" in found[0].detail


def test_overlapping_dimse(
    daemon: Daemon, known: known_archive.Known, caplog: pytest.LogCaptureFixture
) -> None:
    """Two C-FINDs sent back to back on one association, the second before the first's
    responses are read: the nested-query script of the issue. The first C-FIND waits 200 ms
    (an injected delay) before it is served, so the second has surely arrived meanwhile."""
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    daemon.faults.add(operation="find", delay_ms=200, times=1)
    assoc = scu.associate(daemon, contexts=[(FIND, None)])
    context_id = assoc.accepted_contexts[0].context_id
    study, series = known.uid("ct1", "StudyInstanceUID"), known.uid("ct1", "SeriesInstanceUID")
    query = identifier("IMAGE", SOPInstanceUID="", StudyInstanceUID=study, SeriesInstanceUID=series)
    for message_id in (1, 2):
        request = C_FIND()
        request.MessageID = message_id
        request.AffectedSOPClassUID = FIND
        request.Priority = 2
        request.Identifier = BytesIO(encode(query, True, True))
        assoc.dimse.send_msg(request, context_id)
    finals = 0
    for _ in range(100):  # bounded: 3 pending + 1 final per query
        _, response = assoc.dimse.get_msg(block=True)
        assert response is not None, "the daemon stopped answering"
        if response.Status != 0xFF00:
            finals += 1
            if finals == 2:
                break
    assoc.release()
    event = daemon.audit.wait_for("finding", outcome="nonconformant")
    assert event.rule == "overlapping-dimse"
    logged(caplog, "overlapping-dimse")
    assert event.detail.startswith("message 2: a request arrived while 1 other(s) were pending")


def test_move_to_the_requester_without_a_listener(
    simdaemon: Any, rt_patient: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, FINDINGS_LOG)
    entity = simdaemon.test_entity  # its port is reserved, and nothing listens there
    study = rt_patient.datasets()[0].StudyInstanceUID
    _, final, _ = scu.move(simdaemon, identifier("STUDY", StudyInstanceUID=study),
                           entity.ae_title, calling=entity.ae_title)  # fmt: skip
    assert int(final.Status) == 0xA702
    event = only_finding(simdaemon, "move-destination-is-requester-without-listener")
    assert f"nothing listens on 127.0.0.1:{entity.port}" in event.detail
    assert f"listen on 127.0.0.1:{entity.port} (a storage SCP)" in event.detail
    logged(caplog, "move-destination-is-requester-without-listener")


# --- no false positives -------------------------------------------------------------------------


def test_the_project_client_produces_no_finding(
    simdaemon: Any, rt_patient: Any, daemon_client: Any
) -> None:
    assert daemon_client.find_patients(patient_id=rt_patient.patient_id)
    studies = daemon_client.find_studies(rt_patient.patient_id)
    series = daemon_client.find_series(studies[0])
    assert daemon_client.find_images(series[0])
    assert daemon_client.retrieve(series[0])
    # Synthetic patients in several locales (accented and CJK names), stored over the network.
    for seed, locale in ((1, "fr_FR"), (2, "ja_JP")):
        patient = synthetic_patient(seed, slices=2, matrix=16, locale=locale)
        assert daemon_client.store(patient.datasets()).ok
    simdaemon.audit.assert_no_findings("style")


def test_a_move_without_parent_keys_is_a_finding_too(
    daemon: Daemon, known: known_archive.Known
) -> None:
    series = known.uid("ct1", "SeriesInstanceUID")
    scu.move(daemon, identifier("SERIES", SeriesInstanceUID=series), "NOWHERE")
    assert daemon.audit.findings() == [], "an unknown destination ends the move first"
    scu.move(daemon, identifier("SERIES", SeriesInstanceUID=series), "SIMCLIENT")
    event = only_finding(daemon, "query-missing-parent-unique-key")
    assert "C-MOVE at SERIES level without StudyInstanceUID" in event.detail


def test_dcmtk_storescu_produces_no_finding(
    dcmtk: Callable[[str], str], daemon: Daemon, tmp_path: Path
) -> None:
    first = objects.ct(size=16, InstanceNumber=1)
    series = [first, objects.same_patient(first, objects.ct(size=16, InstanceNumber=2))]
    done = test_dcmtk.storescu(dcmtk, daemon, "SIMCLIENT", test_dcmtk._write(tmp_path, series))
    assert done.returncode == 0, done.stderr
    assert daemon.archive.count() == 2
    daemon.audit.assert_no_findings("portability")
    # storescu proposes every storage class it knows for two CT files: style, and said so
    # once, not once per class.
    (refused,) = daemon.audit.findings(rule="refused-presentation-context")
    assert refused.outcome == "style"
    assert "storage SOP class(es) the daemon does not store refused" in refused.detail


def test_dcmtk_findscu_produces_no_finding(
    dcmtk: Callable[[str], str], daemon: Daemon, known: known_archive.Known, tmp_path: Path
) -> None:
    keys = {"QueryRetrieveLevel": "SERIES", "StudyInstanceUID": known.uid("ct1",
            "StudyInstanceUID"), "Modality": "", "SeriesInstanceUID": ""}  # fmt: skip
    found = test_dcmtk.findscu(dcmtk, daemon, "-S", keys, tmp_path / "out")
    assert found
    daemon.audit.assert_no_findings("style")


def test_dcmtk_movescu_produces_no_finding(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    receiver = test_dcmtk.StorescpOnce(dcmtk("storescp"), tmp_path / "received")
    destination = {"ae_title": "DEST", "ip": "127.0.0.1", "port": receiver.port}
    daemon = make_daemon(trusted=[CLIENT, destination])
    archive = known_archive.build()
    known_archive.store(daemon, archive)
    command = [dcmtk("movescu"), "-S", "-aet", "SIMCLIENT", "-aec", daemon.ae_title,
               "-aem", "DEST", "-k", "QueryRetrieveLevel=STUDY",
               "-k", f"StudyInstanceUID={archive.uid('ct1', 'StudyInstanceUID')}"]  # fmt: skip
    done = subprocess.run(
        [*command, daemon.host, str(daemon.port)], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert receiver.wait().returncode == 0
    assert daemon.audit.events("move")[-1].status == 0
    # movescu proposes Q/R FIND beside MOVE and uses only MOVE: style, and said so.
    unused = daemon.audit.wait_for("finding", outcome="style")  # recorded once released
    assert unused.rule == "unused-presentation-contexts"
    daemon.audit.assert_no_findings("portability")
    assert "Query/Retrieve Information Model - FIND" in unused.detail


def test_simdaemon_audit_findings_prints_only_the_findings(
    make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon = make_daemon()
    known_archive.store(daemon, known_archive.build())
    scu.find(daemon, identifier("SERIES", Modality="CT"))
    daemon.stop()
    command = [sys.executable, "-m", "simdaemon", "audit", "--archive", str(tmp_path / "archive")]
    words = subprocess.run([*command, "--findings"], capture_output=True, text=True, timeout=60)
    assert words.returncode == 0, words.stderr
    (line,) = words.stdout.splitlines()
    assert "finding from 'SIMCLIENT'" in line
    assert "portability" in line
    assert "C-FIND at SERIES level without StudyInstanceUID" in line
    as_json = subprocess.run(
        [*command, "--findings", "--json"], capture_output=True, text=True, timeout=60
    )
    (event,) = [json.loads(x) for x in as_json.stdout.splitlines()]
    assert (event["operation"], event["rule"], event["outcome"]) == (
        "finding",
        "query-missing-parent-unique-key",
        "portability",
    )
    assert event["detail"].startswith("message 1: ")


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("toml", "key", "said"),
    [
        ('fail_on = "fatal"', "findings.fail_on", '"none", "danger", "nonconformant"'),
        ("churn_per_second = 0", "findings.churn_per_second", "from 1 to 100000"),
        ('enabled = "yes"', "findings.enabled", "expected true or false"),
    ],
)
def test_findings_settings_errors_name_key_value_and_choices(
    toml: str, key: str, said: str
) -> None:
    with pytest.raises(ConfigError) as bad:
        loads(f"[findings]\n{toml}\n")
    text = str(bad.value)
    assert key in text
    assert said in text


def test_findings_settings_defaults_and_example() -> None:
    settings = Config().findings
    assert (settings.fail_on, settings.churn_per_second, settings.enabled) == ("danger", 10, True)
    assert "[findings]" in example()
    assert loads(example()).findings == settings


def test_a_name_that_lost_its_accents_but_attached_is_a_finding(make_daemon: MakeDaemon) -> None:
    """Matched by Patient ID alone, the re-encoded object is filed under the stored patient;
    the finding still says its name lost characters."""
    daemon = make_daemon(patient_matching={"last_name": False, "first_name": False})
    first = objects.ct(PatientID="EVIL-2", PatientName="Léon^Marie",
                       SpecificCharacterSet="ISO_IR 192")  # fmt: skip
    again = objects.same_patient(first, objects.ct())
    again.SpecificCharacterSet = "ISO_IR 192"
    again.PatientName = "L?on^Marie"
    answers = scu.store(daemon, [first, again])
    assert [int(a.Status) for a in answers] == [0, 0]
    event = only_finding(daemon, "text-charset-mismatch")
    assert "'L?on' is the archive's 'Léon'" in event.detail


def test_reset_forgets_the_associations_counted_for_churn(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(findings={"churn_per_second": 2})
    for _ in range(2):
        scu.associate(daemon).release()
    daemon.reset()
    for _ in range(2):  # 4 within a second, but only 2 since the reset
        scu.associate(daemon).release()
    assert daemon.audit.findings(rule="association-per-request-churn") == []
