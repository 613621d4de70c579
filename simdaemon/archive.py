"""The archive: SQLite (WAL, foreign keys) indexing DICOM files kept under ``files/``.

Layout of an archive folder::

    archive.sqlite      patients, studies (courses), series, instances, review tasks, audit
    files/<study>/<series>/<instance>.dcm    one Part-10 file per instance, named by UIDs
    files/.incoming/    objects being written, and files made ready for the next ones
                        (``*.ready``, zeros); never referenced by a row
    orphans/            files found without a row at start-up, kept for re-import
    sqltrace.log        every SQL statement, when [investigation] sql_trace is on

Connection and thread model. pynetdicom serves each association on its own thread, so many
threads import and query at once. SQLite admits one writer at a time, so the archive has
exactly one write connection, used under a lock: writers queue in the process instead of
spinning on SQLITE_BUSY, and "find the patient, then insert" is one transaction no other
import can interleave with. Reads use a pool of read-only connections; in WAL mode they run
concurrently with the writer and see the last committed state.

Durability. An import writes its file to ``files/.incoming`` first, renames it into place
inside the transaction that inserts its rows, and commits before success is answered. A
process killed at any instant therefore leaves at worst a file without a row (moved to
``orphans/`` by :meth:`Archive.check` at the next start), never a row without its file.
``synchronous = NORMAL`` in WAL mode makes a commit survive a crash of the process; it does
not promise survival of a power cut, which a test harness does not need. An archive opened
with ``durable=False`` (the pytest plugin's per-test archives, deleted with the test's
temporary folder) uses ``synchronous = OFF``: no fsync at all, so a commit still survives a
crash of the process (its writes are in the operating system's cache) but a power cut may
leave the database corrupt rather than only short of its last commits. Such an archive, when
new, gets its database as a copy of bytes made once per process, not statement by statement.
"""

from __future__ import annotations

import collections
import errno
import logging
import os
import queue
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final

from pydicom import dcmread
from pydicom.dataset import Dataset

from simdaemon.attributes import read as read_attributes
from simdaemon.audit import AuditEvent
from simdaemon.config import AuditSettings
from simdaemon.retention import TRIM_EVERY, Coalescer, first_kept, trim_before

if TYPE_CHECKING:
    # Loaded with the import pipeline (the only maker of a Transaction), not with the
    # archive: a daemon answering its first C-ECHO has no use for patient matching.
    from simdaemon.matching import (
        Candidates,
        Demographics,
        Incoming,
        StoredInstance,
        StoredPatient,
        StoredSeries,
        StoredStudy,
    )

__all__ = [
    "HIERARCHY",
    "SCHEMA_VERSION",
    "Archive",
    "ArchiveError",
    "Consistency",
    "InstanceRow",
    "NewInstance",
    "NewSeries",
    "NewStudy",
    "PatientRow",
    "ReviewTask",
    "SeriesRow",
    "Table",
    "Transaction",
    "below",
    "count_below",
    "joined",
]

LOGGER = logging.getLogger(__name__)

SCHEMA_VERSION = 3
DATABASE = "archive.sqlite"
FILES = "files"
INCOMING = ".incoming"
ORPHANS = "orphans"
SQL_TRACE = "sqltrace.log"

_SCHEMA = """
CREATE TABLE patients (
    id INTEGER PRIMARY KEY,
    patient_id TEXT NOT NULL,
    patient_id2 TEXT NOT NULL DEFAULT '',
    patient_name TEXT NOT NULL DEFAULT '',
    patient_name_key TEXT NOT NULL DEFAULT '',
    last_name_key TEXT NOT NULL DEFAULT '',
    first_name_key TEXT NOT NULL DEFAULT '',
    birth_date TEXT NOT NULL DEFAULT '',
    sex TEXT NOT NULL DEFAULT '',
    hospital TEXT NOT NULL DEFAULT '',
    department TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL
);
CREATE INDEX patients_patient_id ON patients (patient_id);
CREATE INDEX patients_patient_id2 ON patients (patient_id2);
CREATE INDEX patients_name ON patients (patient_name_key);
CREATE INDEX patients_last_first ON patients (last_name_key, first_name_key);
CREATE INDEX patients_birth_date ON patients (birth_date);

CREATE TABLE studies (
    id INTEGER PRIMARY KEY,
    patient INTEGER NOT NULL REFERENCES patients (id) ON DELETE CASCADE,
    study_uid TEXT NOT NULL UNIQUE,
    study_id TEXT NOT NULL DEFAULT '',
    study_date TEXT NOT NULL DEFAULT '',
    study_time TEXT NOT NULL DEFAULT '',
    accession_number TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    referring_physician TEXT NOT NULL DEFAULT ''
);
CREATE INDEX studies_patient ON studies (patient);
CREATE INDEX studies_study_id ON studies (study_id);
CREATE INDEX studies_date ON studies (study_date, study_time);
CREATE INDEX studies_accession ON studies (accession_number);

CREATE TABLE series (
    id INTEGER PRIMARY KEY,
    study INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
    series_uid TEXT NOT NULL UNIQUE,
    modality TEXT NOT NULL DEFAULT '',
    series_number TEXT NOT NULL DEFAULT '',
    description TEXT NOT NULL DEFAULT '',
    series_date TEXT NOT NULL DEFAULT '',
    series_time TEXT NOT NULL DEFAULT '',
    frame_of_reference_uid TEXT NOT NULL DEFAULT '',
    user_origin_x REAL,
    user_origin_y REAL,
    user_origin_z REAL
);
CREATE INDEX series_study ON series (study);
CREATE INDEX series_modality ON series (modality);
CREATE INDEX series_number ON series (series_number);

CREATE TABLE instances (
    id INTEGER PRIMARY KEY,
    series INTEGER NOT NULL REFERENCES series (id) ON DELETE CASCADE,
    sop_instance_uid TEXT NOT NULL UNIQUE,
    sop_class_uid TEXT NOT NULL,
    instance_number TEXT NOT NULL DEFAULT '',
    content_date TEXT NOT NULL DEFAULT '',
    content_time TEXT NOT NULL DEFAULT '',
    file TEXT NOT NULL UNIQUE,
    transfer_syntax TEXT NOT NULL,
    charset TEXT NOT NULL DEFAULT '',
    calling_ae TEXT NOT NULL DEFAULT '',
    received TEXT NOT NULL,
    attributes BLOB NOT NULL
);
CREATE INDEX instances_series ON instances (series);
CREATE INDEX instances_sop_class ON instances (sop_class_uid);
CREATE INDEX instances_number ON instances (instance_number);
CREATE INDEX instances_content ON instances (content_date, content_time);

CREATE TABLE review_tasks (
    id INTEGER PRIMARY KEY,
    instance INTEGER NOT NULL UNIQUE REFERENCES instances (id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'open',
    created TEXT NOT NULL
);

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    time TEXT NOT NULL,
    operation TEXT NOT NULL,
    calling_ae TEXT NOT NULL,
    called_ae TEXT NOT NULL,
    peer TEXT NOT NULL,
    outcome TEXT NOT NULL,
    status INTEGER,
    rule TEXT NOT NULL,
    detail TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    repeats INTEGER NOT NULL DEFAULT 1,
    last_time TEXT,
    sop_instance_uid TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_operation ON audit (operation, calling_ae);
"""

#: Statements that bring an archive of schema version N (the key) to N + 1.
_MIGRATIONS: dict[int, str] = {
    # 2: a rejection repeated within [audit] coalesce_s is counted on its first row.
    1: "ALTER TABLE audit ADD COLUMN repeats INTEGER NOT NULL DEFAULT 1; "
    "ALTER TABLE audit ADD COLUMN last_time TEXT;",
    # 3: the object an event is about, by value (AuditTrail.assert_stored used the prose).
    2: "ALTER TABLE audit ADD COLUMN sop_instance_uid TEXT NOT NULL DEFAULT '';",
}


@dataclass(frozen=True)
class Table:
    """A table of the hierarchy: its name, the alias every query gives it, its parent link.

    ``parent`` is the column holding the key (``id``) of the row one level up; empty at the top.
    """

    name: str
    alias: str
    parent: str = ""


#: The tables the archive indexes, top down: a patient's studies, a study's series, a series'
#: instances (the depth in this tuple is the Query/Retrieve level's value). Every join between
#: them is made from these links by :func:`joined` and :func:`below`, and nowhere else.
HIERARCHY = (
    Table("patients", "p"),
    Table("studies", "s", "patient"),
    Table("series", "r", "study"),
    Table("instances", "i", "series"),
)


def _join(tables: Sequence[Table], suffix: str) -> str:
    """``tables`` (top down) joined from the bottom one up, each alias with ``suffix``."""
    bottom = tables[-1]
    parts = [f"{bottom.name} {bottom.alias}{suffix}"]
    for parent, child in zip(reversed(tables[:-1]), reversed(tables[1:]), strict=True):
        parts.append(
            f"JOIN {parent.name} {parent.alias}{suffix} "
            f"ON {parent.alias}{suffix}.id = {child.alias}{suffix}.{child.parent}"
        )
    return " ".join(parts)


def joined(depth: int) -> str:
    """A FROM clause: the rows of :data:`HIERARCHY` at ``depth``, each with its ancestors.

    ``joined(2)`` is ``series r JOIN studies s ON s.id = r.study JOIN patients p ON p.id =
    s.patient``: every alias of the levels above is there to select from or match on.
    """
    return _join(HIERARCHY[: depth + 1], "")


def below(depth: int, under: int, suffix: str) -> tuple[str, str]:
    """A correlated subquery's FROM clause and condition: rows at ``depth`` under one row.

    The row is the outer query's row at depth ``under`` (alias unsuffixed); the subquery's
    aliases carry ``suffix`` so they do not shadow the outer ones. ``below(3, 1, "2")`` is
    ``("instances i2 JOIN series r2 ON r2.id = i2.series", "r2.study = s.id")``: the
    instances of study ``s``.
    """
    tables = HIERARCHY[under + 1 : depth + 1]
    top = tables[0]
    return _join(tables, suffix), f"{top.alias}{suffix}.{top.parent} = {HIERARCHY[under].alias}.id"


def count_below(depth: int, under: int, suffix: str = "") -> str:
    """An SQL expression counting the rows at ``depth`` under the outer row at ``under``."""
    tables, condition = below(depth, under, suffix)
    return f"(SELECT count(*) FROM {tables} WHERE {condition})"


class ArchiveError(RuntimeError):
    """The archive folder cannot be used; the message says why and what to do."""


def _casefold(value: str | None) -> str | None:
    return value.casefold() if isinstance(value, str) else value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


@lru_cache(maxsize=64)
def _insert_sql(table: str, columns: tuple[str, ...]) -> str:
    """The INSERT statement for ``columns`` of ``table``, built once per shape."""
    for name in (table, *columns):
        # Names come from this module's code, never from a peer; refuse anything that is not
        # a plain identifier so a mistake cannot turn into SQL.
        if not name.isidentifier():
            raise ValueError(f"{name!r} is not a table or column name")
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def _insert(db: sqlite3.Connection, table: str, row: Mapping[str, object]) -> int:
    """Insert ``row`` (column name to value) into ``table``; return the new row's key.

    Every INSERT of the archive goes through here, so columns are always named, never
    matched to values by position; a column left out takes the schema's default.
    """
    cursor = db.execute(_insert_sql(table, tuple(row)), tuple(row.values()))
    return int(cursor.lastrowid or 0)


def _with_repeats(detail: str, repeats: int, last_time: str | None) -> str:
    """A stored event's detail, saying how often it was repeated (coalesced rejections)."""
    if repeats <= 1:
        return detail
    last = f" until {last_time}" if last_time else ""
    return f"{detail} (and {repeats - 1} more like this from the same host{last})"


def _columns(row: NewStudy | NewSeries | NewInstance) -> dict[str, object]:
    """A typed row as column name to value (its field names are its table's columns)."""
    return {f.name: getattr(row, f.name) for f in fields(row)}


# --- rows as tests and the command line read them ---------------------------------------


@dataclass(frozen=True)
class PatientRow:
    """A stored patient with how much the archive holds for it."""

    patient_id: str
    patient_id2: str
    name: str
    birth_date: str
    sex: str
    hospital: str
    department: str
    created: str
    studies: int
    series: int
    instances: int


@dataclass(frozen=True)
class SeriesRow:
    """A stored series; ``user_origin`` is set for CT imported with that option on."""

    series_uid: str
    study_uid: str
    patient_id: str
    modality: str
    description: str
    instances: int
    user_origin: tuple[float, float, float] | None


@dataclass(frozen=True)
class InstanceRow:
    """A stored instance, where its file is, and its non-bulk attributes as a data set."""

    sop_instance_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    patient_id: str
    path: Path
    transfer_syntax: str
    charset: str
    calling_ae: str
    received: str
    attributes: Dataset = field(repr=False)


@dataclass(frozen=True)
class ReviewTask:
    """A review task created for an imported treatment image."""

    sop_instance_uid: str
    patient_id: str
    kind: str
    state: str
    created: str


@dataclass(frozen=True)
class Consistency:
    """What :meth:`Archive.check` found: rows without files, files without rows."""

    missing_files: tuple[str, ...] = ()
    orphan_files: tuple[Path, ...] = ()
    partial_files: tuple[Path, ...] = ()

    @property
    def ok(self) -> bool:
        """Every row has its file and every file its row."""
        return not (self.missing_files or self.orphan_files)

    def describe(self) -> str:
        """The findings in words."""
        if self.ok and not self.partial_files:
            return "archive consistent: every instance row has its file and every file a row"
        parts = []
        if self.missing_files:
            parts.append(
                f"{len(self.missing_files)} instance row(s) without a file: "
                + ", ".join(self.missing_files[:5])
            )
        if self.orphan_files:
            parts.append(f"{len(self.orphan_files)} file(s) without a row")
        if self.partial_files:
            parts.append(f"{len(self.partial_files)} unfinished incoming file(s)")
        return "; ".join(parts)


# --- rows as an import writes them ----------------------------------------------------------
# Each field is a column of the table in the docstring, so a renamed column is a type error
# where the row is built, and a test compares the fields with the schema.


@dataclass(frozen=True)
class NewStudy:
    """A ``studies`` row to insert (an ARIA course), without its patient key."""

    study_uid: str
    study_id: str = ""
    study_date: str = ""
    study_time: str = ""
    accession_number: str = ""
    description: str = ""
    referring_physician: str = ""


@dataclass(frozen=True)
class NewSeries:
    """A ``series`` row to insert, without its study key."""

    series_uid: str
    modality: str = ""
    series_number: str = ""
    description: str = ""
    series_date: str = ""
    series_time: str = ""
    frame_of_reference_uid: str = ""


@dataclass(frozen=True)
class NewInstance:
    """An ``instances`` row to insert, without its series key, file, time and attributes."""

    sop_instance_uid: str
    sop_class_uid: str
    transfer_syntax: str
    instance_number: str = ""
    content_date: str = ""
    content_time: str = ""
    charset: str = ""
    calling_ae: str = ""


# --- the write transaction -----------------------------------------------------------------

#: The ``patients`` column holding each matching criterion's key (as Demographics.key gives it).
_CRITERION_COLUMNS: Final = MappingProxyType(
    {
        "patient_id": "patient_id",
        "patient_id2": "patient_id2",
        "last_name": "last_name_key",
        "first_name": "first_name_key",
        "birth_date": "birth_date",
    }
)


class Transaction:
    """One import's writes, made while holding the archive's write lock."""

    def __init__(self, archive: Archive, connection: sqlite3.Connection) -> None:
        self._archive = archive
        self._db = connection
        self._renames: list[tuple[Path, Path]] = []

    def candidates(self, incoming: Incoming, criteria: Sequence[str]) -> Candidates:
        """What :func:`simdaemon.matching.place` needs to place ``incoming``.

        The contract is :class:`simdaemon.matching.Candidates`; ``criteria`` are the enabled
        matching criteria. Read inside the transaction, so no other import can change the
        answer before this one writes.
        """
        from simdaemon.matching import Candidates

        return Candidates(
            patients=self._patients(incoming.demographics, criteria),
            study=self._study(incoming.study_uid),
            series=self._series(incoming.series_uid),
            duplicate=self._instance(incoming.sop_instance_uid),
        )

    def _patients(
        self, incoming: Demographics, criteria: Sequence[str]
    ) -> tuple[StoredPatient, ...]:
        """Stored patients agreeing on every enabled criterion, plus any with the same ID."""
        from simdaemon.matching import Demographics, StoredPatient

        clauses = [f"{_CRITERION_COLUMNS[c]} = ?" for c in criteria]
        params: list[str] = [incoming.patient_id, *(incoming.key(c) for c in criteria)]
        where = " AND ".join(clauses) or "1"
        rows = self._db.execute(
            "SELECT id, patient_id, patient_id2, patient_name, birth_date FROM patients "
            f"WHERE patient_id = ? OR ({where})",
            params,
        ).fetchall()
        return tuple(
            StoredPatient(
                row[0], Demographics.from_values(row[1], [row[2]] if row[2] else [], row[3], row[4])
            )
            for row in rows
        )

    def add_patient(
        self, incoming: Demographics, name: str, sex: str, hospital: str, department: str
    ) -> int:
        """Create a patient and return its key."""
        return _insert(
            self._db,
            "patients",
            {
                "patient_id": incoming.patient_id,
                "patient_id2": incoming.patient_id2,
                "patient_name": name,
                "patient_name_key": name.casefold(),
                "last_name_key": incoming.key("last_name"),
                "first_name_key": incoming.key("first_name"),
                "birth_date": incoming.birth_date,
                "sex": sex,
                "hospital": hospital,
                "department": department,
                "created": _now(),
            },
        )

    def _study(self, study_uid: str) -> StoredStudy | None:
        """A stored study and the patient it is filed under."""
        from simdaemon.matching import StoredStudy

        row = self._db.execute(
            f"SELECT s.id, s.patient, p.patient_id FROM {joined(1)} WHERE s.study_uid = ?",
            (study_uid,),
        ).fetchone()
        return None if row is None else StoredStudy(key=row[0], patient=row[1], patient_id=row[2])

    def add_study(self, patient: int, study: NewStudy) -> int:
        """Create a study (an ARIA course) under ``patient`` and return its key."""
        return _insert(self._db, "studies", {"patient": patient, **_columns(study)})

    def _series(self, series_uid: str) -> StoredSeries | None:
        """A stored series and the study it is filed under."""
        from simdaemon.matching import StoredSeries

        row = self._db.execute(
            f"SELECT r.id, r.study, s.study_uid FROM {_join(HIERARCHY[1:3], '')} "
            "WHERE r.series_uid = ?",
            (series_uid,),
        ).fetchone()
        return None if row is None else StoredSeries(key=row[0], study=row[1], study_uid=row[2])

    def add_series(self, study: int, series: NewSeries) -> int:
        """Create a series under ``study`` and return its key."""
        return _insert(self._db, "series", {"study": study, **_columns(series)})

    def set_user_origin(self, series: int, origin: tuple[float, float, float]) -> None:
        """Keep a CT series' user origin (the first image that carries one sets it)."""
        self._db.execute(
            "UPDATE series SET user_origin_x = ?, user_origin_y = ?, user_origin_z = ? "
            "WHERE id = ? AND user_origin_x IS NULL",
            (*origin, series),
        )

    def _instance(self, sop_instance_uid: str) -> StoredInstance | None:
        """A stored instance and its file."""
        from simdaemon.matching import StoredInstance

        row = self._db.execute(
            "SELECT id, file FROM instances WHERE sop_instance_uid = ?", (sop_instance_uid,)
        ).fetchone()
        if row is None:
            return None
        return StoredInstance(key=row[0], file=self._archive.folder / row[1])

    def remove_instance(self, key: int) -> None:
        """Delete an instance row (its review task goes with it)."""
        self._db.execute("DELETE FROM instances WHERE id = ?", (key,))

    def add_instance(
        self,
        series: int,
        instance: NewInstance,
        staged: Path,
        final: Path,
        attributes: bytes,
    ) -> int:
        """Insert an instance row; its staged file is moved to ``final`` before commit."""
        key = self.index_instance(
            series, instance, final.relative_to(self._archive.folder).as_posix(), attributes
        )
        self._renames.append((staged, final))
        return key

    def index_instance(
        self, series: int, instance: NewInstance, file: str, attributes: bytes
    ) -> int:
        """Insert an instance row for a file the caller places itself (bulk loads).

        ``file`` is relative to the archive folder. Nothing checks that it exists: this is for
        tools that fill an archive quickly (benchmarks), not for imports.
        """
        return _insert(
            self._db,
            "instances",
            {
                "series": series,
                **_columns(instance),
                "file": file,
                "received": _now(),
                "attributes": attributes,
            },
        )

    def add_review_task(self, instance: int, kind: str) -> None:
        """Open a review task for an imported image."""
        _insert(self._db, "review_tasks", {"instance": instance, "kind": kind, "created": _now()})

    def _place_files(self) -> None:
        for staged, final in self._renames:
            try:  # the folder is usually there: a series' second object on
                os.replace(staged, final)
            except FileNotFoundError:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staged, final)


# --- the archive ---------------------------------------------------------------------------


class _Tracer:
    """Appends every SQL statement with its time to ``sqltrace.log``."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def __call__(self, statement: str) -> None:
        line = f"{_now()} [{threading.current_thread().name}] {' '.join(statement.split())}\n"
        with self._lock:
            self._file.write(line)
            self._file.flush()

    def close(self) -> None:
        with self._lock:
            self._file.close()


#: Files made ready in ``files/.incoming`` before they are needed (:class:`_Ready`).
READY = ".ready"
#: The most zero bytes a file made ready holds: a large object overwrites what there is and
#: writes the rest as usual, and four files ready never hold more than 16 MiB between them.
PREFILL_LIMIT = 4 * 1024 * 1024
#: After an object smaller than this the next files made ready stay empty: its few pages
#: cost less than cutting a longer file back to its length would.
PREFILL_MIN = 64 * 1024


def _write_all(handle: int, chunks: Sequence[bytes]) -> None:
    """Write ``chunks`` to the open file ``handle``, in one system call when it takes them all.

    A Python file object costs more here than the write itself for most objects: it asks
    the file's size and whether it is a terminal, and writes a header and its body apart.
    """
    views = [memoryview(chunk) for chunk in chunks if chunk]
    while views:
        written = os.writev(handle, views)
        if written <= 0:
            raise OSError(errno.EIO, "the file took none of the bytes written to it")
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]


def _add_functions(connection: sqlite3.Connection) -> None:
    """The SQL functions the schema and the queries use."""
    # PN matching is case-insensitive beyond ASCII, which SQLite's lower() is not.
    connection.create_function("casefold", 1, _casefold, deterministic=True)


def _create_schema(connection: sqlite3.Connection) -> None:
    """Create the current schema in an empty database, in one transaction."""
    connection.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")


#: Offsets 18 and 19 of an SQLite database's header: its file format write and read
#: versions, 1 for a rollback journal and 2 for WAL (https://www.sqlite.org/fileformat2.html,
#: "File format version numbers"). A database whose header says 2 opens in WAL mode.
_FORMAT_VERSIONS = slice(18, 20)
_WAL_FORMAT = b"\x02\x02"


@lru_cache(maxsize=1)
def _new_database() -> bytes:
    """An empty archive's database file, its schema created, as bytes (once per process).

    In WAL mode already, as :meth:`Archive._connect` wants it: an in-memory database
    serializes with a rollback journal's header, and switching a new file to WAL on its
    first connection (a rewrite of its first page, through a journal created and removed)
    was about half of a per-test daemon's start and stop (``benchmarks/RESULTS.md``).
    """
    db = sqlite3.connect(":memory:")
    try:
        _add_functions(db)
        _create_schema(db)
        image = bytearray(db.serialize())
    finally:
        db.close()
    image[_FORMAT_VERSIONS] = _WAL_FORMAT
    return bytes(image)


def _write_new_database(path: Path) -> None:
    """Give a new archive that need not survive a power cut its database by copying bytes.

    Creating the schema statement by statement was a fifth of a per-test daemon's start
    (the ``simdaemon`` fixture); a copy of the same database costs one write. Without fsync,
    as everything in such an archive (``durable=False``). An existing file is left alone.
    """
    try:
        handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return
    try:
        _write_all(handle, [_new_database()])
    except OSError:
        path.unlink(missing_ok=True)  # never a part of a database for the next start
        raise
    finally:
        os.close(handle)


def _write_zeros(handle: int, count: int) -> None:
    """Write ``count`` zero bytes to the open file ``handle``."""
    os.write(handle, bytes(count))


class _Ready:
    """Files in ``files/.incoming``, created and filled ahead of need by a helper thread.

    Creating a file is a dear step of filing an object on an ordinary disk: 0.5 ms on ext4
    here. Dearer still, on a virtual machine, is the page cache the object's bytes go into:
    a guest page the host has not backed yet (a fresh machine's, or one the balloon driver
    gave back) costs ~9 us on first touch, 1.2 ms for a 512 KiB CT slice, against 0.13 ms
    into pages already the guest's (``benchmarks/store.py``). So the helper creates the next
    few files while the daemon waits for the next object, and writes into each as many zero
    bytes as the last object staged had (from :data:`PREFILL_MIN` up to
    :data:`PREFILL_LIMIT`), the way databases zero-fill their next log segment: an import
    then overwrites pages that exist, cuts the file to its own length if it is shorter, and
    renames it. A series of slices of one size pays the allocation on the helper's thread,
    beside the network, not between request and answer.

    They are named ``*.ready``: :meth:`Archive.check` does not count them as unfinished
    imports, and :meth:`Archive.repair` at start removes those a stopped process left (zeros,
    or an import it never acknowledged).
    """

    def __init__(self, folder: Path, keep: int = 4) -> None:
        self._folder = folder
        self._keep = keep
        #: Each file made ready, with the zero bytes it holds.
        self._files: collections.deque[tuple[Path, int]] = collections.deque()
        self._wanted = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        #: How many zero bytes the next files made ready hold: the last object's size.
        self.prefill = 0

    @property
    def idle(self) -> bool:
        """Whether the helper has not started (its files, if any, are a stopped process's)."""
        return self._thread is None

    def take(self) -> tuple[Path, int] | None:
        """A file ready to overwrite and its length (``None``: none yet), and ask for more."""
        try:
            ready: tuple[Path, int] | None = self._files.popleft()
        except IndexError:
            ready = None
        with self._lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(
                    target=self._fill, name=f"simdaemon-ready@{self._folder}", daemon=True
                )
                self._thread.start()
        self._wanted.set()
        return ready

    def _fill(self) -> None:
        while not self._closed:
            self._wanted.wait()
            self._wanted.clear()
            while len(self._files) < self._keep and not self._closed:
                path = self._folder / f"{uuid.uuid4().hex}{READY}"
                size = self.prefill
                try:
                    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                except OSError:  # disk full, folder gone: imports create their own
                    break
                try:
                    if size:
                        _write_zeros(handle, size)
                except OSError:  # disk full: not left behind, where nothing would remove it
                    path.unlink(missing_ok=True)
                    break
                finally:
                    os.close(handle)
                self._files.append((path, size))

    def close(self) -> None:
        """Stop the helper and remove the files it made ready; idempotent."""
        self._closed = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join(5)
        while self._files:
            self._files.popleft()[0].unlink(missing_ok=True)


class Archive:
    """An archive folder, opened; see the module docstring for the model."""

    def __init__(
        self,
        folder: Path,
        *,
        sql_trace: bool = False,
        audit: AuditSettings | None = None,
        durable: bool = True,
    ) -> None:
        self.folder = folder.resolve()
        #: ``synchronous = NORMAL`` (True) or ``OFF``: see the module docstring.
        self.durable = durable
        #: How much of the persisted audit trail is kept (``[audit]``).
        self.audit_settings = audit if audit is not None else AuditSettings()
        self._coalescer = Coalescer(self.audit_settings)
        self._audit_inserts = 0
        self.files = self.folder / FILES
        self.incoming = self.files / INCOMING
        try:
            self.incoming.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ArchiveError(
                f"cannot create the archive folder {folder}: {error.strerror}; "
                "set [daemon] archive to a folder you can write"
            ) from error
        self._tracer = _Tracer(self.folder / SQL_TRACE) if sql_trace else None
        self._write_lock = threading.Lock()
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._closed = False
        self._ready = _Ready(self.incoming)
        if not durable:
            try:
                _write_new_database(self.folder / DATABASE)
            except OSError as error:
                raise ArchiveError(
                    f"cannot create the archive database in {folder}: {error.strerror}"
                ) from error
        self._writer = self._connect()
        self._migrate()
        self.trim_audit()  # what an earlier run, or other settings, left beyond retention

    # --- connections -----------------------------------------------------------------------

    def _connect(self, *, readonly: bool = False) -> sqlite3.Connection:
        connection = sqlite3.connect(
            self.folder / DATABASE, isolation_level=None, check_same_thread=False, timeout=30.0
        )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute(f"PRAGMA synchronous = {'NORMAL' if self.durable else 'OFF'}")
        connection.execute("PRAGMA foreign_keys = ON")
        _add_functions(connection)
        if readonly:
            connection.execute("PRAGMA query_only = ON")
        if self._tracer is not None:
            connection.set_trace_callback(self._tracer)
        with self._all_lock:
            self._all.append(connection)
        return connection

    def _migrate(self) -> None:
        with self._write_lock:
            db = self._writer
            version = int(db.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise ArchiveError(
                    f"{self.folder / DATABASE} has schema version {version}, written by a newer "
                    f"simdaemon; this release reads versions up to {SCHEMA_VERSION}"
                )
            if version == 0:
                tables = db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
                if tables:
                    raise ArchiveError(
                        f"{self.folder / DATABASE} is an SQLite database but not a simdaemon "
                        "archive; point [daemon] archive at an empty or simdaemon folder"
                    )
                _create_schema(db)
                return
            while version < SCHEMA_VERSION:
                db.executescript(
                    f"BEGIN; {_MIGRATIONS[version]} PRAGMA user_version = {version + 1}; COMMIT;"
                )
                LOGGER.info("archive migrated from schema %d to %d", version, version + 1)
                version += 1

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """A read-only connection from the pool, returned to it afterwards."""
        if self._closed:
            raise ArchiveError("the archive is closed")
        try:
            connection = self._readers.get_nowait()
        except queue.Empty:
            connection = self._connect(readonly=True)
        try:
            yield connection
        finally:
            self._readers.put(connection)

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Hold the write lock for one transaction; files are placed, then it commits."""
        if self._closed:
            raise ArchiveError("the archive is closed")
        with self._write_lock:
            db = self._writer
            db.execute("BEGIN IMMEDIATE")
            tx = Transaction(self, db)
            try:
                yield tx
                tx._place_files()
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def stage(self, *chunks: bytes) -> Path:
        """Write an object's bytes under ``files/.incoming`` and return the staged path.

        Into a file made ready beforehand when there is one (:class:`_Ready`), overwriting
        its zeros and cut to the object's length.
        """
        length = sum(map(len, chunks))
        self._ready.prefill = min(length, PREFILL_LIMIT) if length >= PREFILL_MIN else 0
        ready = self._ready.take()
        if ready is not None:
            path, zeros = ready
            try:
                handle = os.open(path, os.O_WRONLY)
            except FileNotFoundError:  # removed under us (a repair): create one after all
                pass
            else:
                try:
                    _write_all(handle, chunks)
                    if zeros > length:
                        os.ftruncate(handle, length)
                finally:
                    os.close(handle)
                return path
        staged = self.incoming / f"{uuid.uuid4().hex}.part"
        handle = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            _write_all(handle, chunks)
        finally:
            os.close(handle)
        return staged

    def path_for(self, study_uid: str, series_uid: str, sop_instance_uid: str) -> Path:
        """Where an instance's file lives; the UIDs must have been validated."""
        return self.files / study_uid / series_uid / f"{sop_instance_uid}.dcm"

    def record_audit(self, event: AuditEvent) -> None:
        """Persist an audit event (the in-memory trail calls this for every event).

        A rejection repeating a recent one is counted on that one's row
        (:class:`~simdaemon.retention.Coalescer`); every :data:`~simdaemon.retention.TRIM_EVERY`
        rows, the trail is trimmed to ``[audit] retention_days`` and ``max_events``.
        """
        if self._closed:
            return
        with self._write_lock:
            repeated = self._coalescer.repeat_of(event)
            if repeated is not None:
                counted = self._writer.execute(
                    "UPDATE audit SET repeats = repeats + 1, last_time = ? WHERE id = ?",
                    (event.time.isoformat(timespec="microseconds"), repeated),
                ).rowcount
                if counted:
                    return
            row = _insert(
                self._writer,
                "audit",
                {
                    "time": event.time.isoformat(timespec="microseconds"),
                    "operation": event.operation,
                    "calling_ae": event.calling_ae,
                    "called_ae": event.called_ae,
                    "peer": event.peer,
                    "outcome": event.outcome,
                    "status": event.status,
                    "rule": event.rule,
                    "detail": event.detail,
                    "duration_ms": event.duration_ms,
                    "sop_instance_uid": event.sop_instance_uid,
                },
            )
            self._coalescer.stored(event, row)
            self._audit_inserts += 1
            if self._audit_inserts % TRIM_EVERY == 0:
                self._trim_audit()

    def _trim_audit(self) -> None:
        """Delete what ``[audit]`` does not keep; the caller holds the write lock."""
        db, settings = self._writer, self.audit_settings
        before = trim_before(settings, datetime.now(UTC))
        deleted = 0
        if before is not None:
            cutoff = before.isoformat(timespec="microseconds")
            deleted += db.execute("DELETE FROM audit WHERE time < ?", (cutoff,)).rowcount
        last = db.execute("SELECT max(id) FROM audit").fetchone()[0]
        lowest = first_kept(settings, int(last or 0))
        if lowest is not None:
            deleted += db.execute("DELETE FROM audit WHERE id < ?", (lowest,)).rowcount
        if deleted:
            self._coalescer.forget()
            LOGGER.info("audit trail trimmed: %d event(s) past [audit] retention deleted", deleted)

    def trim_audit(self) -> None:
        """Apply ``[audit] retention_days`` and ``max_events`` to the persisted trail now."""
        with self._write_lock:
            self._trim_audit()

    def clear(self) -> None:
        """Empty the archive: every row and every file (a fresh archive for the next test)."""
        with self.transaction() as tx:
            for table in ("review_tasks", "instances", "series", "studies", "patients", "audit"):
                tx._db.execute(f"DELETE FROM {table}")
            self._coalescer.forget()
        for entry in self.files.iterdir():
            if entry == self.incoming:
                continue
            if entry.is_dir():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def close(self) -> None:
        """Close every connection; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._ready.close()
        with self._write_lock, self._all_lock:
            for connection in self._all:
                connection.close()
            self._all.clear()
        if self._tracer is not None:
            self._tracer.close()

    def __enter__(self) -> Archive:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- reading ---------------------------------------------------------------------------

    def patients(self) -> list[PatientRow]:
        """Every stored patient, in the order they were created."""
        with self.reading() as db:
            counts = ", ".join(count_below(depth, 0) for depth in (1, 2, 3))
            rows = db.execute(
                "SELECT p.patient_id, p.patient_id2, p.patient_name, p.birth_date, p.sex, "
                f"p.hospital, p.department, p.created, {counts} FROM {joined(0)} ORDER BY p.id"
            ).fetchall()
        return [PatientRow(*row) for row in rows]

    def series(self) -> list[SeriesRow]:
        """Every stored series."""
        with self.reading() as db:
            rows = db.execute(
                "SELECT r.series_uid, s.study_uid, p.patient_id, r.modality, r.description, "
                f"{count_below(3, 2)}, r.user_origin_x, r.user_origin_y, r.user_origin_z "
                f"FROM {joined(2)} ORDER BY r.id"
            ).fetchall()
        return [
            SeriesRow(
                series_uid=row[0],
                study_uid=row[1],
                patient_id=row[2],
                modality=row[3],
                description=row[4],
                instances=row[5],
                user_origin=(
                    None if row[6] is None else (float(row[6]), float(row[7]), float(row[8]))
                ),
            )
            for row in rows
        ]

    _INSTANCE_SELECT = (
        "SELECT i.sop_instance_uid, i.sop_class_uid, r.series_uid, s.study_uid, p.patient_id, "
        "i.file, i.transfer_syntax, i.charset, i.calling_ae, i.received, i.attributes "
        f"FROM {joined(3)}"
    )

    def _instance_row(self, row: Sequence[Any]) -> InstanceRow:
        return InstanceRow(
            sop_instance_uid=row[0],
            sop_class_uid=row[1],
            series_uid=row[2],
            study_uid=row[3],
            patient_id=row[4],
            path=self.folder / row[5],
            transfer_syntax=row[6],
            charset=row[7],
            calling_ae=row[8],
            received=row[9],
            attributes=read_attributes(row[10], row[6]),
        )

    def instances(self, patient_id: str | None = None) -> list[InstanceRow]:
        """Every stored instance (of one patient, when given), in the order received."""
        sql, params = self._INSTANCE_SELECT, tuple[str, ...]()
        if patient_id is not None:
            sql, params = f"{sql} WHERE p.patient_id = ?", (patient_id,)
        with self.reading() as db:
            rows = db.execute(f"{sql} ORDER BY i.id", params).fetchall()
        return [self._instance_row(row) for row in rows]

    def instance(self, sop_instance_uid: str) -> InstanceRow | None:
        """One stored instance by SOP Instance UID."""
        with self.reading() as db:
            row = db.execute(
                f"{self._INSTANCE_SELECT} WHERE i.sop_instance_uid = ?", (sop_instance_uid,)
            ).fetchone()
        return None if row is None else self._instance_row(row)

    def read(self, sop_instance_uid: str) -> Dataset:
        """The stored object, read from its file."""
        row = self.instance(sop_instance_uid)
        if row is None:
            raise KeyError(f"no instance {sop_instance_uid} in the archive")
        return dcmread(row.path)

    def count(self) -> int:
        """How many instances the archive holds."""
        with self.reading() as db:
            return int(db.execute("SELECT count(*) FROM instances").fetchone()[0])

    def review_tasks(self) -> list[ReviewTask]:
        """Every review task, oldest first."""
        with self.reading() as db:
            rows = db.execute(
                "SELECT i.sop_instance_uid, p.patient_id, t.kind, t.state, t.created "
                f"FROM {joined(3)} JOIN review_tasks t ON t.instance = i.id ORDER BY t.id"
            ).fetchall()
        return [ReviewTask(*row) for row in rows]

    def audit_events(self) -> list[AuditEvent]:
        """The persisted audit trail, oldest first (it outlives the daemon process)."""
        return self.audit_after(0)[0]

    def audit_after(self, row: int) -> tuple[list[AuditEvent], int]:
        """The audit events recorded after row ``row``, and the last row read (to follow)."""
        with self.reading() as db:
            rows = db.execute(
                "SELECT id, time, operation, calling_ae, called_ae, peer, outcome, detail, rule, "
                "status, duration_ms, repeats, last_time, sop_instance_uid FROM audit WHERE id > ? "
                "ORDER BY id",
                (row,),
            ).fetchall()
        events = [
            AuditEvent(
                time=datetime.fromisoformat(r[1]),
                operation=r[2],
                calling_ae=r[3],
                called_ae=r[4],
                peer=r[5],
                outcome=r[6],
                detail=_with_repeats(r[7], r[11], r[12]),
                rule=r[8],
                status=r[9],
                duration_ms=r[10],
                sop_instance_uid=r[13],
            )
            for r in rows
        ]
        return events, (rows[-1][0] if rows else row)

    # --- consistency -----------------------------------------------------------------------

    def check(self, *, at_start: bool = False) -> Consistency:
        """Compare rows with files: report rows without files and files without rows.

        ``at_start``: read the rows on the writer's connection, holding the write lock, as a
        daemon does before it serves (nothing else reads or writes yet). A daemon then opens
        its first read-only connection, about a millisecond on a disk, only when something
        queries it: a test's daemon that is never queried never does. While serving, a check
        reads on a connection of its own, so imports go on during it.
        """
        if at_start:
            with self._write_lock:
                rows = self._writer.execute("SELECT file FROM instances").fetchall()
        else:
            with self.reading() as db:
                rows = db.execute("SELECT file FROM instances").fetchall()
        referenced = {row[0] for row in rows}
        on_disk: set[str] = set()
        partial: list[Path] = []
        for directory, subdirs, names in os.walk(self.files):
            here = Path(directory)
            if here == self.incoming:  # files made ready ahead of need are not imports
                partial.extend(here / name for name in names if not name.endswith(READY))
                subdirs.clear()
                continue
            for name in names:
                on_disk.add((here / name).relative_to(self.folder).as_posix())
        return Consistency(
            missing_files=tuple(sorted(referenced - on_disk)),
            orphan_files=tuple(self.folder / f for f in sorted(on_disk - referenced)),
            partial_files=tuple(partial),
        )

    def repair(self, found: Consistency | None = None) -> Consistency:
        """Fix what :meth:`check` found without losing anything a client was told is stored.

        Unfinished incoming files were never acknowledged and are removed. Files without a
        row (renamed into place, then the process died before the commit) move to
        ``orphans/`` so they can be re-imported. Rows whose file has gone are only reported:
        the row is all that is left of the object, so it stays (queries still find it; a
        move of it fails that sub-operation).
        """
        found = found if found is not None else self.check()
        for path in found.partial_files:
            path.unlink(missing_ok=True)
        if self._ready.idle:  # what a stopped process made ready and never used
            for path in self.incoming.glob(f"*{READY}"):
                path.unlink(missing_ok=True)
        orphans = self.folder / ORPHANS
        for path in found.orphan_files:
            orphans.mkdir(exist_ok=True)
            os.replace(path, orphans / f"{int(time.time())}-{path.name}")
            LOGGER.warning("file without a row moved to %s: %s", orphans, path.name)
        for name in found.missing_files[:20]:
            LOGGER.error("instance row without its file (kept): %s", name)
        if len(found.missing_files) > 20:
            LOGGER.error("... and %d more rows without files", len(found.missing_files) - 20)
        return found
