"""C-MOVE over the network: destinations, counts, failures, cancel, charsets, quirks."""

from __future__ import annotations

import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelMove

from simdaemon import Daemon
from simdaemon.services import move as move_service
from tests import known as known_archive
from tests import objects, scu
from tests.conftest import CLIENT, MakeDaemon
from tests.races import requestor_looks_after_the_answer
from tests.receiver import Receiver

UNIQUE = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}


def start(receivers: list[Receiver], **options: Any) -> Receiver:
    receiver = Receiver(**options).start()
    receivers.append(receiver)
    return receiver


@pytest.fixture
def seeded(
    make_daemon: MakeDaemon, receivers: list[Receiver]
) -> tuple[Daemon, known_archive.Known, Receiver]:
    destination = start(receivers)
    daemon = make_daemon(trusted=[CLIENT, destination.entity()])
    known = known_archive.build()
    known_archive.store(daemon, known)
    return daemon, known, destination


# (level, the known object whose level key is moved, the objects that must arrive)
MOVES = [
    ("PATIENT", "mr1", {"mr1", "mr2"}),
    ("STUDY", "ct1", {"ct1", "ct2", "ct3", "rs", "plan1", "plan2", "dose", "reg"}),
    ("SERIES", "plan1", {"plan1", "plan2"}),
    ("IMAGE", "ct2", {"ct2"}),
]


@pytest.mark.parametrize(
    ("model", "level", "name", "expected"),
    [
        pytest.param(model, *move, id=f"{model}-{move[0]}")
        for move in MOVES
        for model in ("patient", "study")
        if not (model == "study" and move[0] == "PATIENT")
    ],
)
def test_move_at_each_level_to_a_third_party(
    seeded: tuple[Daemon, known_archive.Known, Receiver],
    model: str,
    level: str,
    name: str,
    expected: set[str],
) -> None:
    daemon, known, destination = seeded
    keys = {UNIQUE[level]: str(getattr(known.objects[name], UNIQUE[level]))}
    if level in ("SERIES", "IMAGE"):  # the unique keys above, as a strict client sends them
        keys["StudyInstanceUID"] = known.uid(name, "StudyInstanceUID")
    if model == "patient" and level != "PATIENT":
        keys["PatientID"] = str(known.objects[name].PatientID)
    pending, final, failed = scu.move(daemon, scu.identifier(level, **keys), "DEST", model)

    assert final.Status == 0x0000
    assert failed is None
    assert (final.NumberOfCompletedSuboperations, final.NumberOfFailedSuboperations) == (
        len(expected),
        0,
    )
    assert sorted(destination.uids()) == sorted(known.uid(n) for n in expected)
    assert [p.NumberOfRemainingSuboperations for p in pending] == list(
        range(len(expected) - 1, -1, -1)
    )
    assert [p.NumberOfCompletedSuboperations for p in pending] == list(range(1, len(expected) + 1))
    for received in destination.received:
        assert received.calling_ae == "VMSDBD"
        assert received.originator_ae == "SIMCLIENT"
        assert received.originator_id == 1
    event = daemon.audit.events("move")[-1]
    assert event.status == 0
    assert f"{len(expected)} completed, 0 failed" in event.detail


def test_move_to_the_requester_itself(make_daemon: MakeDaemon, receivers: list[Receiver]) -> None:
    itself = start(receivers, ae_title="SIMCLIENT")
    daemon = make_daemon(trusted=[itself.entity()])
    ds = objects.ct()
    scu.store(daemon, [ds])
    _, final, _ = scu.move(daemon, scu.identifier("IMAGE", SOPInstanceUID=ds.SOPInstanceUID),
                           "SIMCLIENT")  # fmt: skip
    assert final.Status == 0
    assert itself.uids() == [ds.SOPInstanceUID]


def test_an_unknown_destination_is_a801_without_any_connection(
    seeded: tuple[Daemon, known_archive.Known, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    daemon, known, destination = seeded

    def no_connection(*args: Any) -> None:
        raise AssertionError("the daemon tried to connect to an unknown destination")

    monkeypatch.setattr(move_service, "_connect", no_connection)
    pending, final, _ = scu.move(
        daemon, scu.identifier("STUDY", StudyInstanceUID=known.uid("ct1", "StudyInstanceUID")),
        "NOBODY",
    )  # fmt: skip
    assert pending == []
    assert final.Status == 0xA801
    assert final.ErrorComment == "Move Destination is not a trusted entity"
    assert destination.received == []
    event = daemon.audit.events("move")[-1]
    assert "'NOBODY' is not a trusted entity" in event.detail
    assert "no connection was made" in event.detail


def test_an_unreachable_destination_is_a702(make_daemon: MakeDaemon) -> None:
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        daemon = make_daemon(
            trusted=[CLIENT, {"ae_title": "GONE", "ip": "127.0.0.1", "port": port}]
        )
        ds = objects.ct()
        scu.store(daemon, [ds])
        _, final, failed = scu.move(
            daemon, scu.identifier("IMAGE", SOPInstanceUID=ds.SOPInstanceUID), "GONE"
        )
    assert final.Status == 0xA702
    assert final.ErrorComment == "cannot associate with the Move Destination"
    assert final.NumberOfFailedSuboperations == 1
    assert failed is not None
    assert failed.FailedSOPInstanceUIDList == ds.SOPInstanceUID
    assert f"cannot reach 'GONE' at 127.0.0.1:{port}" in daemon.audit.events("move")[-1].detail


def test_a_destination_refusing_the_association_is_a702(make_daemon: MakeDaemon) -> None:
    """The destination is another daemon, which does not trust this one's AE title."""
    other = make_daemon(ae_title="OTHERDB", trusted=[CLIENT])
    daemon = make_daemon(
        trusted=[CLIENT, {"ae_title": "OTHERDB", "ip": "127.0.0.1", "port": other.port}]
    )
    ds = objects.ct()
    scu.store(daemon, [ds])
    _, final, _ = scu.move(
        daemon, scu.identifier("IMAGE", SOPInstanceUID=ds.SOPInstanceUID), "OTHERDB"
    )
    assert final.Status == 0xA702
    assert final.NumberOfFailedSuboperations == 1
    detail = daemon.audit.events("move")[-1].detail
    assert "it rejected the association (result 1, source 1, reason 3)" in detail
    assert other.audit.events("associate")[-1].calling_ae == "VMSDBD"


def test_a_destination_rejecting_before_the_requestor_looks_is_still_a_rejection(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The daemon's own requestor, in pynetdicom's race on a loaded machine."""
    other = make_daemon(ae_title="OTHERDB", trusted=[CLIENT])
    daemon = make_daemon(
        trusted=[CLIENT, {"ae_title": "OTHERDB", "ip": "127.0.0.1", "port": other.port}]
    )
    ds = objects.ct()
    scu.store(daemon, [ds])
    requestor_looks_after_the_answer(monkeypatch, other.port)
    _, final, _ = scu.move(
        daemon, scu.identifier("IMAGE", SOPInstanceUID=ds.SOPInstanceUID), "OTHERDB"
    )
    assert final.Status == 0xA702
    detail = daemon.audit.events("move")[-1].detail
    assert "it rejected the association (result 1, source 1, reason 3)" in detail


def test_a_destination_rejecting_rt_dose_counts_it_failed(
    make_daemon: MakeDaemon, receivers: list[Receiver]
) -> None:
    no_dose = start(receivers, refuse=[objects.RT_DOSE])
    daemon = make_daemon(trusted=[CLIENT, no_dose.entity()])
    known = known_archive.build()
    known_archive.store(daemon, known)
    _, final, failed = scu.move(
        daemon, scu.identifier("STUDY", StudyInstanceUID=known.uid("ct1", "StudyInstanceUID")),
        "DEST",
    )  # fmt: skip
    assert final.Status == 0xB000
    assert final.NumberOfCompletedSuboperations == 7
    assert final.NumberOfFailedSuboperations == 1
    assert failed is not None
    assert failed.FailedSOPInstanceUIDList == known.uid("dose")
    assert known.uid("dose") not in no_dose.uids()


def test_all_doses_of_a_study_by_a_non_unique_key(
    seeded: tuple[Daemon, known_archive.Known, Receiver], make_daemon: MakeDaemon
) -> None:
    """SPEC 7's non-unique move: SOPInstanceUID absent, so it needs move_universal_match.

    Refused by default (issue 13, ``tests/test_move_refusal.py``); the quirk allows it.
    """
    strict, known, destination = seeded
    second = objects.same_patient(known.objects["dose"], objects.rt_dose(known.uid("plan2")))
    scu.store(strict, [second])
    keys = {"StudyInstanceUID": known.uid("ct1", "StudyInstanceUID"),
            "SOPClassUID": objects.RT_DOSE}  # fmt: skip
    _, final, _ = scu.move(strict, scu.identifier("IMAGE", **keys), "DEST")
    assert (final.Status, final.ErrorComment) == (
        0xC000,
        "SOPInstanceUID absent: would move 1 patient, 1 study, 2 objects",
    )
    lenient = make_daemon(
        trusted=[CLIENT, destination.entity()], quirks={"move_universal_match": True}
    )
    _, final, _ = scu.move(lenient, scu.identifier("IMAGE", **keys), "DEST")
    assert final.Status == 0
    assert sorted(destination.uids()) == sorted([known.uid("dose"), second.SOPInstanceUID])


def test_nothing_matched_is_success_with_zero_suboperations(
    seeded: tuple[Daemon, known_archive.Known, Receiver],
) -> None:
    daemon, _, destination = seeded
    pending, final, _ = scu.move(
        daemon, scu.identifier("STUDY", StudyInstanceUID="1.2.3.4"), "DEST"
    )
    assert pending == []
    assert final.Status == 0
    assert final.NumberOfCompletedSuboperations == 0
    assert destination.received == []


def test_cancel_mid_move_stops_between_suboperations(
    make_daemon: MakeDaemon, receivers: list[Receiver]
) -> None:
    cancel_sent = threading.Event()

    def hold_the_third(count: int) -> None:
        if count == 3:
            cancel_sent.wait(10)

    destination = start(receivers, on_store=hold_the_third)
    daemon = make_daemon(trusted=[CLIENT, destination.entity()])
    template = objects.ct(PatientID="LONG")
    series = [objects.same_patient(template, objects.ct()) for _ in range(30)]
    scu.store(daemon, series)
    model = StudyRootQueryRetrieveInformationModelMove
    assoc = scu.associate(daemon, contexts=[(model, None)])
    statuses: list[Dataset] = []
    try:
        request = scu.identifier("SERIES", SeriesInstanceUID=template.SeriesInstanceUID)
        for answer, _ in assoc.send_c_move(request, "DEST", model, msg_id=9):
            statuses.append(answer)
            if len(statuses) == 2:
                assoc.send_c_cancel(9, query_model=model)
                cancel_sent.set()
    finally:
        cancel_sent.set()
        assoc.release()
    final = statuses[-1]
    assert final.Status == 0xFE00
    assert 3 <= final.NumberOfCompletedSuboperations < 30
    assert final.NumberOfRemainingSuboperations == 30 - final.NumberOfCompletedSuboperations
    assert len(destination.received) == final.NumberOfCompletedSuboperations
    assert daemon.audit.events("move")[-1].status == 0xFE00


def test_text_arrives_in_the_destinations_export_charset(
    make_daemon: MakeDaemon, receivers: list[Receiver]
) -> None:
    latin = start(receivers, ae_title="LATIN")
    daemon = make_daemon(trusted=[CLIENT, latin.entity(export_charset="ISO_IR 100")])
    ds = objects.ct(SpecificCharacterSet="ISO_IR 192", PatientName="Müller^Jürgen")
    scu.store(daemon, [ds])
    _, final, _ = scu.move(
        daemon, scu.identifier("IMAGE", SOPInstanceUID=ds.SOPInstanceUID), "LATIN"
    )
    assert final.Status == 0
    (received,) = latin.received
    assert received.dataset.SpecificCharacterSet == "ISO_IR 100"
    assert "Müller^Jürgen".encode("latin-1") in received.raw
    assert "Müller".encode() not in received.raw
    assert str(received.dataset.PatientName) == "Müller^Jürgen"
    assert received.dataset.PixelData == ds.PixelData


@pytest.mark.parametrize(
    ("quirk", "name", "expected"),
    [(True, "ct2", 0xC001), (True, "plan1", 0x0000), (False, "ct2", 0x0000)],
)
def test_image_move_requires_series_uid_quirk(
    make_daemon: MakeDaemon, receivers: list[Receiver], quirk: bool, name: str, expected: int
) -> None:
    destination = start(receivers)
    daemon = make_daemon(
        trusted=[CLIENT, destination.entity()],
        quirks={"image_move_requires_series_uid": quirk},
    )
    known = known_archive.build()
    known_archive.store(daemon, known)
    _, final, _ = scu.move(daemon, scu.identifier("IMAGE", SOPInstanceUID=known.uid(name)), "DEST")
    assert final.Status == expected
    if expected == 0xC001:
        assert final.ErrorComment == "IMAGE move needs SeriesInstanceUID"
        assert destination.received == []
    with_series = scu.identifier(
        "IMAGE",
        SOPInstanceUID=known.uid(name),
        SeriesInstanceUID=known.uid(name, "SeriesInstanceUID"),
    )
    _, final, _ = scu.move(daemon, with_series, "DEST")
    assert final.Status == 0


def test_outgoing_objects_are_saved_with_save_all_iods(
    make_daemon: MakeDaemon, receivers: list[Receiver], tmp_path: Path
) -> None:
    destination = start(receivers)
    daemon = make_daemon(
        trusted=[CLIENT, destination.entity()], investigation={"save_all_iods": True}
    )
    ds = objects.ct()
    scu.store(daemon, [ds])
    scu.move(daemon, scu.identifier("IMAGE", SOPInstanceUID=ds.SOPInstanceUID), "DEST")
    names = sorted(p.name for p in (tmp_path / "iods").glob("*.dcm"))
    assert len(names) == 2
    assert "_in_SIMCLIENT_" in names[0]
    assert "_out_DEST_" in names[1]


def test_a_cidr_destination_has_no_address(make_daemon: MakeDaemon) -> None:
    daemon = make_daemon(trusted=[CLIENT, {"ae_title": "LAN", "ip": "10.0.0.0/8", "port": 104}])
    ds = objects.ct()
    scu.store(daemon, [ds])
    _, final, _ = scu.move(daemon, scu.identifier("IMAGE", SOPInstanceUID=ds.SOPInstanceUID), "LAN")
    assert final.Status == 0xA702
    assert final.ErrorComment == "destination has no single address"


def test_a_bad_level_is_c000(seeded: tuple[Daemon, known_archive.Known, Receiver]) -> None:
    daemon, _, _ = seeded
    _, final, _ = scu.move(daemon, scu.identifier("FRAME", SOPInstanceUID="1.2"), "DEST")
    assert final.Status == 0xC000
    assert final.ErrorComment == "unknown Query/Retrieve Level 'FRAME'"


@pytest.mark.parametrize("stored_charset", [None, "ISO_IR 100", "ISO_IR 192"])
def test_ascii_objects_arrive_equal_with_the_destinations_charset(
    make_daemon: MakeDaemon, receivers: list[Receiver], stored_charset: str | None
) -> None:
    """Sent as stored (at most the Specific Character Set element rewritten), not re-encoded."""
    destination = start(receivers)
    daemon = make_daemon(trusted=[CLIENT, destination.entity(export_charset="ISO_IR 192")])
    ds = objects.ct(size=16, SpecificCharacterSet=stored_charset, StudyDescription="Pelvis")
    scu.store(daemon, [ds])
    _, final, _ = scu.move(
        daemon, scu.identifier("IMAGE", SOPInstanceUID=ds.SOPInstanceUID), "DEST"
    )
    assert final.Status == 0
    (received,) = destination.received
    stored = daemon.archive.read(ds.SOPInstanceUID)
    assert received.dataset.SpecificCharacterSet == "ISO_IR 192"
    mine = {e.tag: e.value for e in stored if e.keyword != "SpecificCharacterSet"}
    theirs = {e.tag: e.value for e in received.dataset if e.keyword != "SpecificCharacterSet"}
    assert theirs == mine
