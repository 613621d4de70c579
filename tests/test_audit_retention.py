"""The audit trail stays bounded: memory, coalesced rejections, retention, older archives."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from simdaemon.archive import DATABASE, SCHEMA_VERSION, Archive
from simdaemon.audit import AuditEvent, AuditTrail
from simdaemon.config import AuditSettings
from simdaemon.retention import TRIM_EVERY, Coalescer
from tests import scu
from tests.conftest import MakeDaemon

NOT_TRUSTED = "calling AE 'STRANGER' is not a trusted entity"


def rejection(port: int, *, host: str = "127.0.0.1", detail: str = NOT_TRUSTED) -> AuditEvent:
    return AuditEvent(
        time=datetime.now(UTC),
        operation="associate",
        calling_ae="STRANGER",
        called_ae="VMSDBD",
        peer=f"{host}:{port}",
        outcome="rejected",
        detail=detail,
        rule="calling-ae",
    )


def record(trail: AuditTrail, event: AuditEvent) -> None:
    trail.record(
        event.operation,
        calling_ae=event.calling_ae,
        called_ae=event.called_ae,
        peer=event.peer,
        outcome=event.outcome,
        detail=event.detail,
        rule=event.rule,
    )


def test_memory_keeps_the_latest_events_and_counts_all() -> None:
    trail = AuditTrail(limit=50)
    for port in range(500):
        record(trail, rejection(40000 + port))
    assert len(trail) == 50
    assert trail.recorded == 500
    assert [e.peer for e in trail.events()][-1] == "127.0.0.1:40499"
    assert trail.events()[0].peer == "127.0.0.1:40450"
    assert trail.assert_rejected("STRANGER").peer == "127.0.0.1:40499"


def test_coalescer_counts_only_repeats_of_one_host_and_reason_within_the_window() -> None:
    coalescer = Coalescer(AuditSettings(coalesce_s=60.0))
    first = rejection(1000)
    coalescer.stored(first, 7)
    assert coalescer.repeat_of(rejection(1001)) == 7  # another port of the same host
    assert coalescer.repeat_of(rejection(1001, host="127.0.0.2")) is None
    assert coalescer.repeat_of(rejection(1001, detail="too many associations")) is None
    late = AuditEvent(**{**vars(rejection(1002)), "time": first.time + timedelta(seconds=61)})
    assert coalescer.repeat_of(late) is None
    accepted = AuditEvent(**{**vars(first), "outcome": "accepted"})
    coalescer.stored(accepted, 8)
    assert coalescer.repeat_of(accepted) is None
    off = Coalescer(AuditSettings(coalesce_s=0.0))
    off.stored(first, 7)
    assert off.repeat_of(rejection(1001)) is None


def test_500_rejections_persist_as_one_row_per_host_and_reason(tmp_path: Path) -> None:
    with Archive(tmp_path / "a") as archive:
        trail = AuditTrail(archive.record_audit, limit=100)
        for port in range(500):
            record(trail, rejection(40000 + port, detail=NOT_TRUSTED if port % 2 else "other"))
        stored = archive.audit_events()
        assert len(trail) == 100
    assert [e.detail.split(" (and ")[0] for e in stored] == ["other", NOT_TRUSTED]
    assert all("(and 249 more like this from the same host until " in e.detail for e in stored)
    assert {e.peer for e in stored} == {"127.0.0.1:40000", "127.0.0.1:40001"}


def test_max_events_keeps_the_newest(tmp_path: Path) -> None:
    with Archive(tmp_path / "a", audit=AuditSettings(max_events=100, coalesce_s=0.0)) as archive:
        for port in range(2 * TRIM_EVERY):
            archive.record_audit(rejection(port))  # not coalesced: coalesce_s = 0
        stored = archive.audit_events()
    assert len(stored) == 100
    assert stored[-1].peer == f"127.0.0.1:{2 * TRIM_EVERY - 1}"


def test_retention_days_deletes_older_events_when_opened(tmp_path: Path) -> None:
    old = AuditEvent(**{**vars(rejection(1)), "time": datetime.now(UTC) - timedelta(days=40)})
    with Archive(tmp_path / "a", audit=AuditSettings(retention_days=0)) as archive:
        archive.record_audit(old)
        archive.record_audit(rejection(2, detail="recent"))
        assert len(archive.audit_events()) == 2  # 0: kept for ever
    with Archive(tmp_path / "a", audit=AuditSettings(retention_days=30)) as archive:
        assert [e.detail for e in archive.audit_events()] == ["recent"]


def test_a_schema_1_archive_is_migrated_and_keeps_its_trail(tmp_path: Path) -> None:
    folder = tmp_path / "a"
    with Archive(folder) as archive:
        archive.record_audit(rejection(1))
    with sqlite3.connect(folder / DATABASE) as db:  # the audit table as schema 1 had it
        db.execute("ALTER TABLE audit DROP COLUMN repeats")
        db.execute("ALTER TABLE audit DROP COLUMN last_time")
        db.execute("ALTER TABLE audit DROP COLUMN sop_instance_uid")
        db.execute("PRAGMA user_version = 1")
    db.close()
    with Archive(folder) as archive:
        # A new process starts a new row (it does not know the old one), then counts on it.
        archive.record_audit(rejection(2))
        archive.record_audit(rejection(3))
        stored = archive.audit_events()
    with sqlite3.connect(folder / DATABASE) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
    db.close()
    assert [e.peer for e in stored] == ["127.0.0.1:1", "127.0.0.1:2"]
    assert stored[0].detail == NOT_TRUSTED
    assert stored[1].detail.startswith(f"{NOT_TRUSTED} (and 1 more like this from the same host")


def test_rejected_associations_are_bounded_in_memory_and_coalesced(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(audit={"memory_events": 10})
    for _ in range(20):
        assoc = scu.associate(daemon, "STRANGER")
        assert assoc.is_rejected
    assert len(daemon.audit) == 10
    assert daemon.audit.recorded == 20
    persisted = [e for e in daemon.archive.audit_events() if e.operation == "associate"]
    assert len(persisted) == 1
    assert persisted[0].outcome == "rejected"
    assert "(and 19 more like this from the same host until " in persisted[0].detail
