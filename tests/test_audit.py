"""The audit trail as tests and trainees read it: queries, assertions, `simdaemon audit`."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from simdaemon import Daemon
from tests import objects, scu
from tests.conftest import MakeDaemon


def test_queries_and_assertions(daemon: Daemon) -> None:
    before = datetime.now(UTC)
    stored = objects.ct()
    refused = objects.ct(PatientID="PAT001", PatientName="Other^Person")
    scu.store(daemon, [stored, refused])
    scu.associate(daemon, "STRANGER")
    assert daemon.audit.assert_stored(stored.SOPInstanceUID).status == 0
    assert daemon.audit.assert_rejected("STRANGER").rule == "calling-ae"
    assert [e.status for e in daemon.audit.events("store", outcome="failure")] == [0xC002]
    assert len(daemon.audit.events(status=0xC002)) == 1
    assert len(daemon.audit.events(since=before)) == 4
    assert daemon.audit.events(since=datetime.now(UTC)) == []
    with pytest.raises(AssertionError) as missing:
        daemon.audit.assert_stored(refused.SOPInstanceUID)
    said = str(missing.value)
    assert f"did not store SOP Instance {refused.SOPInstanceUID}" in said
    assert "failure status 0xC002" in said  # the trail, in words
    with pytest.raises(AssertionError, match="rejected no association from 'SIMCLIENT'"):
        daemon.audit.assert_rejected("SIMCLIENT")


def test_assert_stored_matches_the_uid_not_a_substring_of_the_detail(daemon: Daemon) -> None:
    """1.2.3 was never stored, though the trail mentions 1.2.3.4 (the prose search said yes)."""
    stored = objects.ct()
    scu.store(daemon, [stored])
    uid = str(stored.SOPInstanceUID)
    (event,) = daemon.audit.events("store")
    assert event.sop_instance_uid == uid
    assert daemon.archive.audit_events()[-1].sop_instance_uid == uid, "persisted too"
    with pytest.raises(AssertionError, match="did not store SOP Instance"):
        daemon.audit.assert_stored(uid.rsplit(".", 1)[0])


def simdaemon_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "simdaemon", *args]


@pytest.mark.slow  # runs simdaemon audit in a subprocess
def test_simdaemon_audit_prints_a_stopped_daemons_trail(
    make_daemon: MakeDaemon, tmp_path: Path
) -> None:
    daemon = make_daemon()
    ds = objects.ct()
    scu.store(daemon, [ds])
    daemon.stop()
    archive = str(tmp_path / "archive")
    words = subprocess.run(simdaemon_cli("audit", "--archive", archive),
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert words.returncode == 0, words.stderr
    lines = words.stdout.splitlines()
    assert len(lines) == 2
    assert "associate from 'SIMCLIENT' at 127.0.0.1:" in lines[0]
    assert "store from 'SIMCLIENT'" in lines[1]
    assert ds.SOPInstanceUID in lines[1]
    as_json = subprocess.run(simdaemon_cli("audit", "--archive", archive, "--json"),
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    events = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [(e["operation"], e["outcome"], e["status"]) for e in events] == [
        ("associate", "accepted", None),
        ("store", "success", 0),
    ]


@pytest.mark.slow  # runs simdaemon audit in a subprocess
def test_simdaemon_audit_follows_a_running_daemon(make_daemon: MakeDaemon, tmp_path: Path) -> None:
    daemon = make_daemon()
    follower = subprocess.Popen(
        simdaemon_cli("audit", "--archive", str(tmp_path / "archive"), "--follow"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ds = objects.ct()
        scu.store(daemon, [ds])
        assert follower.stdout is not None
        first, second = follower.stdout.readline(), follower.stdout.readline()
        assert "associate from 'SIMCLIENT'" in first
        assert ds.SOPInstanceUID in second
    finally:
        follower.send_signal(signal.SIGTERM)
        _, errors = follower.communicate(timeout=30)
    assert follower.returncode == 0, errors


def test_wait_for_returns_an_event_recorded_later_or_says_what_was_seen(daemon: Daemon) -> None:
    with pytest.raises(TimeoutError, match=r"no store event within 0.05 s; what the daemon saw"):
        daemon.audit.wait_for("store", timeout=0.05)
    ct = objects.ct()
    storing = threading.Thread(target=scu.store, args=(daemon, [ct]))
    storing.start()  # the event is recorded on the daemon's thread while this one waits
    event = daemon.audit.wait_for("store", outcome="success", timeout=10)
    storing.join(10)
    assert ct.SOPInstanceUID in event.detail
