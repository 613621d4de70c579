"""The archive folder itself: schema, versions, connection settings, file names."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

import simdaemon.archive
from simdaemon.archive import (
    SCHEMA_VERSION,
    Archive,
    ArchiveError,
    NewInstance,
    NewSeries,
    NewStudy,
    Transaction,
)
from simdaemon.audit import AuditEvent
from simdaemon.matching import (
    Demographics,
    Incoming,
    StoredInstance,
    StoredSeries,
    StoredStudy,
)


def test_a_new_archive_has_the_current_schema_in_wal_mode_with_foreign_keys(
    tmp_path: Path,
) -> None:
    listing = "SELECT name FROM sqlite_master WHERE type = ?"
    with Archive(tmp_path / "a") as archive, archive.reading() as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in db.execute(listing, ("table",))}
        indexes = {r[0] for r in db.execute(listing, ("index",))}
    assert tables == {"patients", "studies", "series", "instances", "review_tasks", "audit"}
    assert {"patients_patient_id", "patients_name", "series_modality", "studies_date"} <= indexes
    assert (tmp_path / "a" / "files").is_dir()


def test_a_per_test_archive_starts_with_the_database_a_durable_one_creates(
    tmp_path: Path,
) -> None:
    """A non-durable archive's database is copied from bytes made once per process: it must
    be the very schema, version and settings the statements give a durable one."""

    def state(archive: Archive) -> tuple[object, ...]:
        with archive.reading() as db:
            master = sorted(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))
            pragmas = [
                db.execute(f"PRAGMA {name}").fetchone()[0]
                for name in ("user_version", "journal_mode", "foreign_keys", "page_size")
            ]
        return master, pragmas

    with Archive(tmp_path / "d") as durable, Archive(tmp_path / "t", durable=False) as quick:
        assert state(quick) == state(durable)
        assert quick.patients() == []


def test_a_per_test_archive_database_is_written_in_wal_mode_so_opening_it_converts_nothing(
    tmp_path: Path,
) -> None:
    """Switching a new database to WAL on its first connection rewrites its first page (half
    of a per-test daemon's cost): the copied bytes already say WAL, and SQLite takes them."""
    path = tmp_path / "archive.sqlite"
    simdaemon.archive._write_new_database(path)  # what a per-test archive starts from
    written = path.read_bytes()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode = WAL").fetchone()[0] == "wal"  # as _connect
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert path.read_bytes() == written


@pytest.mark.parametrize("durable", [True, False])
def test_reopening_keeps_the_data_and_refuses_a_foreign_database_alike(
    tmp_path: Path, durable: bool
) -> None:
    """The copied database is written only where there is none."""
    with Archive(tmp_path / "a", durable=durable) as archive:
        archive.record_audit(
            AuditEvent(datetime.now(UTC), "echo", "A", "B", "127.0.0.1:1", "answered", "kept")
        )
    with Archive(tmp_path / "a", durable=durable) as archive, archive.reading() as db:
        assert db.execute("SELECT detail FROM audit").fetchall() == [("kept",)]
    (tmp_path / "b").mkdir()
    with sqlite3.connect(tmp_path / "b" / "archive.sqlite") as db:
        db.execute("CREATE TABLE other (x)")
    with pytest.raises(ArchiveError, match="not a simdaemon archive"):
        Archive(tmp_path / "b", durable=durable)


def test_a_database_the_disk_could_not_take_is_a_clear_error_and_leaves_no_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(handle: int, chunks: list[bytes]) -> None:
        os.write(handle, chunks[0][:4096])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(simdaemon.archive, "_write_all", full)
    with pytest.raises(ArchiveError, match=r"cannot create the archive database .*No space left"):
        Archive(tmp_path / "a", durable=False)
    assert not (tmp_path / "a" / "archive.sqlite").exists()


def test_reopening_keeps_the_data(tmp_path: Path) -> None:
    Archive(tmp_path / "a").close()
    with Archive(tmp_path / "a") as archive:
        assert archive.patients() == []


def test_an_archive_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    Archive(tmp_path / "a").close()
    with sqlite3.connect(tmp_path / "a" / "archive.sqlite") as db:
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(ArchiveError, match="written by a newer simdaemon"):
        Archive(tmp_path / "a")


def test_a_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    with sqlite3.connect(tmp_path / "a" / "archive.sqlite") as db:
        db.execute("CREATE TABLE other (x)")
    with pytest.raises(ArchiveError, match="not a simdaemon archive"):
        Archive(tmp_path / "a")


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(ArchiveError, match="cannot create the archive folder"):
        Archive(blocker / "archive")


def test_deleting_a_patient_cascades_to_its_objects(tmp_path: Path) -> None:
    with Archive(tmp_path / "a") as archive:
        with archive.transaction() as tx:
            tx._db.execute("INSERT INTO patients (patient_id, created) VALUES ('P', 'now')")
            tx._db.execute("INSERT INTO studies (patient, study_uid) VALUES (1, '1.2')")
        with archive.transaction() as tx:
            tx._db.execute("DELETE FROM patients")
        with archive.reading() as db:
            assert db.execute("SELECT count(*) FROM studies").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("row", "table"), [(NewStudy, "studies"), (NewSeries, "series"), (NewInstance, "instances")]
)
def test_every_field_of_an_insert_row_is_a_column_of_its_table(
    tmp_path: Path, row: type[NewStudy | NewSeries | NewInstance], table: str
) -> None:
    """Rows are inserted by field name, so a renamed column must be renamed in the row too."""
    with Archive(tmp_path / "a") as archive, archive.reading() as db:
        columns = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
    assert {f.name for f in dataclasses.fields(row)} <= columns


def test_candidates_hold_what_placement_needs_and_no_more(tmp_path: Path) -> None:
    """The contract of :class:`simdaemon.matching.Candidates`, read from real rows."""

    def patient(tx: Transaction, patient_id: str, name: str) -> int:
        last, first = name.split("^")
        demographics = Demographics(patient_id, last_name=last, first_name=first)
        return tx.add_patient(demographics, name, "O", "", "")

    def found(tx: Transaction, placed: Incoming, *criteria: str) -> set[str]:
        return {p.demographics.patient_id for p in tx.candidates(placed, criteria).patients}

    with Archive(tmp_path / "a") as archive, archive.transaction() as tx:
        p1 = patient(tx, "P1", "Doe^John")
        patient(tx, "P2", "Doe^John")
        patient(tx, "P3", "Roe^Ann")
        study = tx.add_study(p1, NewStudy("1.2"))
        series = tx.add_series(study, NewSeries("1.2.3"))
        instance = NewInstance("1.2.3.4", "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.2.1")
        key = tx.index_instance(series, instance, "files/x.dcm", b"")

        def incoming(patient_id: str, name: str, uid: str = "9") -> Incoming:
            demographics = Demographics.from_values(patient_id, [], name, "")
            return Incoming(demographics, uid, uid, uid)

        names = ("last_name", "first_name")
        assert found(tx, incoming("P1", "Doe^John"), "patient_id", *names) == {"P1"}
        assert found(tx, incoming("P9", "DOE^john"), *names) == {"P1", "P2"}
        assert found(tx, incoming("P1", "Smith^Jane"), "patient_id", *names) == {"P1"}
        assert found(tx, incoming("P9", "Smith^Jane"), "patient_id", *names) == set()
        assert found(tx, incoming("P9", "Smith^Jane")) == {"P1", "P2", "P3"}

        nothing = tx.candidates(incoming("P1", "Doe^John"), ())
        assert (nothing.study, nothing.series, nothing.duplicate) == (None, None, None)
        stored = tx.candidates(Incoming(Demographics("P1"), "1.2", "1.2.3", "1.2.3.4"), ())
        assert stored.study == StoredStudy(key=study, patient=p1, patient_id="P1")
        assert stored.series == StoredSeries(key=series, study=study, study_uid="1.2")
        assert stored.duplicate == StoredInstance(key=key, file=archive.folder / "files/x.dcm")
