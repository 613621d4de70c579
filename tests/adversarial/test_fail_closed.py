"""Fail closed: an exception in an access decision rejects, in a handler answers a failure.

pynetdicom logs an exception raised by an EVT_REQUESTED handler and goes on to accept the
association, and answers one raised by a DIMSE handler with its own bare 0xC2xx/0xC3xx. With
the archive's disk full, the audit write in the association decision raised, so an untrusted
AE was let in and the association limit was bypassed (issue 15). These tests make the audit
write or a handler fail on purpose and check what a real peer sees.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

import pytest
from pydicom.dataset import Dataset

import simdaemon.lookup
import simdaemon.server
from simdaemon import Daemon, status
from simdaemon.audit import AuditEvent
from tests import objects
from tests.conftest import MakeDaemon
from tests.scu import associate, find, rejection, status_of, store

#: A-ASSOCIATE-RJ (result, source, reason) when the decision failed: rejected transient,
#: service provider (presentation), reason 2.
DECISION_FAILED = (2, 3, 2)


class FullDisk:
    """An audit sink that fails as the archive's does when its disk is full."""

    def __init__(self, *operations: str) -> None:
        #: The operations whose events fail to be written (none named: every one).
        self.operations = operations
        self.failed = 0

    def __call__(self, event: AuditEvent) -> None:
        if not self.operations or event.operation in self.operations:
            self.failed += 1
            raise sqlite3.OperationalError("database or disk is full")


def kept(daemon: Daemon) -> list[type[BaseException]]:
    """The kinds of exception a daemon kept for raise_errors; clears them (handled here)."""
    kinds = [type(error) for error in daemon.errors]
    daemon.errors.clear()
    return kinds


def test_a_failing_audit_write_rejects_an_untrusted_ae(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon()
    working = daemon.audit.sink
    full = daemon.audit.sink = FullDisk()
    for _ in range(3):
        intruder = associate(daemon, "INTRUDER")
        assert not intruder.is_established
        assert rejection(intruder) == DECISION_FAILED
    assert full.failed == 3
    assert kept(daemon) == [sqlite3.OperationalError] * 3

    daemon.audit.sink = working  # the disk has room again: trusted callers get in
    assoc = associate(daemon)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == status.SUCCESS
    assoc.release()
    assert rejection(associate(daemon, "INTRUDER"))[2] == 3  # calling AE not recognised


def test_a_failing_audit_write_does_not_bypass_the_association_limit(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon(max_associations=1)
    held = associate(daemon)
    assert held.is_established
    working = daemon.audit.sink
    daemon.audit.sink = FullDisk("associate")
    over = associate(daemon)
    assert not over.is_established
    assert rejection(over) == DECISION_FAILED
    assert kept(daemon) == [sqlite3.OperationalError]
    daemon.audit.sink = working
    assert held.send_c_echo().Status == status.SUCCESS  # the one admitted is unharmed
    held.release()


def test_a_failing_audit_write_in_a_store_answers_out_of_resources_with_a_comment(
    make_daemon: MakeDaemon,
) -> None:
    daemon = make_daemon()
    daemon.audit.sink = FullDisk("store")
    answers = store(daemon, [objects.ct(), objects.ct()])
    for answer in answers:  # every one answered, not only the first
        code, comment = status_of(answer)
        assert code == status.OUT_OF_RESOURCES
        assert comment
        assert len(comment) <= 64
    assert kept(daemon) == [sqlite3.OperationalError] * 2


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (RuntimeError("a bug in the import"), status.UNABLE_TO_PROCESS),
        (sqlite3.OperationalError("database is locked"), status.OUT_OF_RESOURCES),
        (OSError(28, "No space left on device"), status.OUT_OF_RESOURCES),
    ],
    ids=["bug", "database-locked", "disk-full"],
)
def test_a_store_handler_that_raises_answers_a_failure_and_archives_nothing(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch, error: Exception, code: int
) -> None:
    daemon = make_daemon()

    def broken(*_: object) -> None:
        raise error

    monkeypatch.setattr(daemon.importer, "run", broken)
    ct = objects.ct()
    [answer] = store(daemon, [ct])
    got, comment = status_of(answer)
    assert got == code
    assert type(error).__name__ in comment
    assert len(comment) <= 64
    assert daemon.archive.instance(ct.SOPInstanceUID) is None
    files = daemon.config.daemon.archive / "files"
    assert not [path for path in files.rglob("*") if path.is_file()]
    assert kept(daemon) == [type(error)]


def test_a_find_that_fails_while_streaming_answers_a_failure_with_a_comment(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon = make_daemon()

    def locked(*_: object) -> Iterator[object]:
        raise sqlite3.OperationalError("database is locked")
        yield  # a generator, as lookup.find is: the failure comes while streaming

    monkeypatch.setattr(simdaemon.lookup, "find", locked)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "STUDY"
    identifier.StudyInstanceUID = ""
    found, final = find(daemon, identifier)
    assert found == []
    assert int(final.Status) == status.OUT_OF_RESOURCES
    assert "OperationalError" in str(final.get("ErrorComment", ""))
    assert kept(daemon) == [sqlite3.OperationalError]


def test_an_echo_handler_that_raises_answers_a_failure_with_a_comment(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: object) -> int:
        raise ZeroDivisionError("bug in a handler")

    monkeypatch.setattr(simdaemon.server, "handle_echo", broken)
    daemon = make_daemon()
    assoc = associate(daemon)
    answer = assoc.send_c_echo()
    assoc.release()
    assert int(answer.Status) == status.UNABLE_TO_PROCESS
    assert "ZeroDivisionError" in str(answer.get("ErrorComment", ""))
    assert kept(daemon) == [ZeroDivisionError]
