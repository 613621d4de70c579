"""CPU an unauthenticated-looking query can take: wildcards, key lengths, budget, C-CANCEL.

Issue 15 item 4: a C-FIND on RTPlanLabel ``*a*a*a*a*a*a*a*b`` against a 64-character label
took 23.5 s and froze every other association. The bounds below are "does not hang" bounds,
not speed claims (benchmarks/ measures speed).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind

from simdaemon import Daemon
from tests import known as known_archive
from tests import objects, scu

FIND = StudyRootQueryRetrieveInformationModelFind
#: Seconds within which a query that used to take "for ever" must be answered.
DOES_NOT_HANG = 5.0
PATHOLOGICAL = "*a" * 7 + "*b"  # 16 characters: within SH's limit, so it is matched


def image_query(**keys: str) -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.SOPInstanceUID = ""
    for keyword, value in keys.items():
        setattr(identifier, keyword, value)
    return identifier


class InThread:
    """Run a call on a thread; keep its result or exception for the test's thread."""

    def __init__(self, call: Any) -> None:
        self.result: Any = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                self.result = call()
            except BaseException as error:  # noqa: BLE001 - re-raised in the test's thread
                self.error = error

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> Any:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"still running after {timeout} s"
        if self.error is not None:
            raise self.error
        return self.result


def echo_status(daemon: Daemon) -> int:
    assoc = scu.associate(daemon)
    assert assoc.is_established
    try:
        return int(assoc.send_c_echo().Status)
    finally:
        assoc.release()


@pytest.mark.filterwarnings("ignore:The value length")  # a 64-char SH label, on purpose
def test_pathological_wildcard_is_answered_and_others_are_served(make_daemon: Any) -> None:
    daemon = make_daemon()
    labels = ["a" * 64, "a" * 63 + "b"]
    answers = scu.store(daemon, [objects.rt_plan(label=label) for label in labels])
    assert [int(a.Status) for a in answers] == [0x0000, 0x0000]
    search = InThread(lambda: scu.find(daemon, image_query(RTPlanLabel=PATHOLOGICAL)))
    assert echo_status(daemon) == 0x0000  # a trusted echo is answered meanwhile
    found, final = search.join(DOES_NOT_HANG)
    assert int(final.Status) == 0x0000
    assert [str(ds.RTPlanLabel) for ds in found] == [labels[1]]


@pytest.mark.filterwarnings("ignore:The value length")  # pydicom warns of it too, rightly
def test_key_longer_than_its_vr_is_refused_naming_it(make_daemon: Any) -> None:
    daemon = make_daemon()
    found, final = scu.find(daemon, image_query(RTPlanLabel="*a" * 40))
    assert not found
    assert int(final.Status) == 0xC000
    assert str(final.ErrorComment) == "RTPlanLabel longer than 16 chars (SH)"
    event = daemon.audit.events("find")[-1]
    assert event.status == 0xC000
    assert "RTPlanLabel longer than 16" in event.detail


def test_query_budget_ends_a_long_query_with_a_failure(make_daemon: Any) -> None:
    daemon = make_daemon(limits={"query_budget_s": 0.001})
    known_archive.bulk_series(daemon, "MANY", 20_000)  # every row filtered out in Python
    found, final = scu.find(daemon, image_query(PatientID="MANY", RTPlanLabel="NOPE"))
    assert not found
    assert int(final.Status) == 0xC000
    assert str(final.ErrorComment) == "query stopped after its 0.001 s budget"
    event = daemon.audit.events("find")[-1]
    assert event.outcome == "failure"
    assert event.status == 0xC000
    assert "(query stopped after its 0.001 s budget)" in event.detail
    assert echo_status(daemon) == 0x0000


def test_c_cancel_stops_a_query_that_has_not_answered_yet(make_daemon: Any) -> None:
    daemon = make_daemon()
    known_archive.bulk_series(daemon, "MANY", 20_000)  # about a second of Python filtering
    assoc = scu.associate(daemon, contexts=[(FIND, None)])
    assert assoc.is_established
    try:
        identifier = image_query(PatientID="MANY", RTPlanLabel="NOPE")
        search = InThread(
            lambda: [int(a.Status) for a, _ in assoc.send_c_find(identifier, FIND, msg_id=9)]
        )
        # The daemon drops a C-CANCEL that arrives before its request; send until answered.
        for _ in range(500):
            assoc.send_c_cancel(9, query_model=FIND)
            search.thread.join(0.01)
            if not search.thread.is_alive():
                break
        statuses = search.join(DOES_NOT_HANG)
    finally:
        assoc.release()
    assert statuses == [0xFE00]
    (event,) = daemon.audit.events("find")
    assert event.status == 0xFE00
    assert "(cancelled)" in event.detail


@pytest.mark.parametrize("lenient", [False, True], ids=["refusal-count", "instances"])
def test_query_budget_ends_a_long_move_before_any_suboperation(
    make_daemon: Any, lenient: bool
) -> None:
    """The move's own lookups (what it would send, and the count of a refusal) are budgeted."""
    daemon = make_daemon(limits={"query_budget_s": 0.001}, quirks={"move_universal_match": lenient})
    known_archive.bulk_series(daemon, "MANY", 20_000)  # every row filtered out in Python
    pending, final, _ = scu.move(daemon, image_query(PatientID="MANY", RTPlanLabel="NOPE"),
                                 "SIMCLIENT")  # fmt: skip
    assert not pending
    assert int(final.Status) == 0xC000
    assert str(final.ErrorComment) == "query stopped after its 0.001 s budget"
    (event,) = daemon.audit.events("move")
    assert event.outcome == "failure"
    assert echo_status(daemon) == 0x0000
