"""The daemon's outgoing associations: quick ACKs, and reading PDUs that arrive in pieces."""

from __future__ import annotations

import contextlib
import queue
import socket
import threading
import types
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage
from pynetdicom import AE

from simdaemon.net import outgoing
from simdaemon.net.outgoing import QuickAckAE, QuickAckSocket, quick_ack
from tests import objects, scu
from tests.conftest import CLIENT, MakeDaemon
from tests.receiver import Receiver

LINUX_ONLY = pytest.mark.skipif(
    not hasattr(socket, "TCP_QUICKACK"), reason="TCP_QUICKACK is Linux only"
)


class Recording:
    """Stands in for a socket: records the options set on it."""

    def __init__(self) -> None:
        self.options: list[tuple[int, int, int]] = []

    def setsockopt(self, level: int, option: int, value: int) -> None:
        self.options.append((level, option, value))


def association_socket(raw: socket.socket) -> QuickAckSocket:
    """A QuickAckSocket wrapping ``raw`` as an accepted connection, with a bare association."""
    assoc: Any = types.SimpleNamespace(dul=types.SimpleNamespace(event_queue=queue.Queue()))
    return QuickAckSocket(assoc, client_socket=raw)


@LINUX_ONLY
def test_quick_ack_asks_linux_for_an_immediate_ack() -> None:
    recording = Recording()
    quick_ack(recording)  # type: ignore[arg-type]
    assert recording.options == [(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)]


def test_quick_ack_does_nothing_where_the_option_does_not_exist(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(socket, "TCP_QUICKACK", raising=False)
    recording = Recording()
    quick_ack(recording)  # type: ignore[arg-type]
    assert recording.options == []


def test_quick_ack_on_a_closed_socket_is_harmless() -> None:
    closed = socket.socket()
    closed.close()
    quick_ack(closed)


def test_a_pdu_sent_in_pieces_is_read_whole_with_an_ack_asked_after_each_piece(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []
    monkeypatch.setattr(outgoing, "quick_ack", lambda raw: asked.append(raw.fileno()))
    ours, theirs = socket.socketpair()
    with ours, theirs:
        descriptor = ours.fileno()
        sock = association_socket(ours)
        pieces = [bytes([n]) * 70_000 for n in range(3)]  # more than one read each
        sent = threading.Event()

        def send_in_pieces() -> None:
            for piece in pieces:
                theirs.sendall(piece)
            sent.set()

        sender = threading.Thread(target=send_in_pieces)
        sender.start()
        received = sock.recv(len(b"".join(pieces)))
        sender.join(10)
        assert sent.is_set()
    assert bytes(received) == b"".join(pieces)
    assert len(asked) >= 3  # 210,000 bytes take at least four reads of up to 64 KiB
    assert set(asked) == {descriptor}


def test_what_arrived_before_the_peer_closed_is_returned() -> None:
    ours, theirs = socket.socketpair()
    with ours:
        sock = association_socket(ours)
        theirs.sendall(b"partial")
        theirs.close()
        assert bytes(sock.recv(100)) == b"partial"


def test_ready_asks_for_a_quick_ack_only_when_data_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[object] = []
    monkeypatch.setattr(outgoing, "quick_ack", asked.append)
    ours, theirs = socket.socketpair()
    with ours, theirs:
        sock = association_socket(ours)
        assert not sock.ready
        assert asked == []
        theirs.sendall(b"x")
        assert sock.ready  # a socketpair delivers at once
        assert asked == [ours]


def test_a_move_asks_for_quick_acks_on_its_association_to_the_destination(
    make_daemon: MakeDaemon, receivers: list[Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    destination = Receiver().start()
    receivers.append(destination)
    peers: list[int] = []
    asked = outgoing.quick_ack

    def recording(raw: socket.socket) -> None:
        with contextlib.suppress(OSError):  # a socket already closed has no peer
            peers.append(int(raw.getpeername()[1]))
        asked(raw)

    monkeypatch.setattr(outgoing, "quick_ack", recording)
    daemon = make_daemon(trusted=[CLIENT, destination.entity()])
    ds = objects.ct()
    scu.store(daemon, [ds])
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPInstanceUID = ds.SOPInstanceUID
    _, final, _ = scu.move(daemon, query, "DEST")
    assert final.Status == 0
    assert destination.uids() == [ds.SOPInstanceUID]
    assert destination.port in peers


def test_an_idle_requested_association_waits_instead_of_polling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """pynetdicom's loops wake every millisecond; the QuickAckAE's wait for something to do."""
    scp = AE()
    scp.add_supported_context(CTImageStorage)
    server = scp.start_server(("127.0.0.1", 0), block=False)
    turns: list[int] = []
    waited = outgoing.WakingDUL._wait

    def counting(self: outgoing.WakingDUL) -> None:
        turns.append(1)
        waited(self)

    monkeypatch.setattr(outgoing.WakingDUL, "_wait", counting)
    try:
        ae = QuickAckAE()
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", int(server.server_address[1]))
        assert assoc.is_established
        assert isinstance(assoc.dul, outgoing.WakingDUL)
        before = len(turns)
        threading.Event().wait(0.5)  # idle, not a synchronisation: the loop's turns are counted
        idle_turns = len(turns) - before
        assoc.release()
        assert assoc.is_released
    finally:
        server.shutdown()
    assert idle_turns <= 25  # 50 ms waits: about 10; pynetdicom's 1 ms polling: about 500
    assert not assoc.dul.is_alive()
