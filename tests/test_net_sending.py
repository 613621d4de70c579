"""Responses the association thread sends itself keep their place behind queued ones.

A P-DATA the daemon answers with is sent from the thread that made it when the DUL reactor
has nothing queued before it (``EventDrivenDUL._send_now``); otherwise it is queued for the
reactor. Either way the peer reads the responses in the order they were made.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

import pytest
from pynetdicom.dul import DULServiceProvider
from pynetdicom.fsm import TRANSITION_TABLE
from pynetdicom.pdu_primitives import P_DATA

import simdaemon.server
from simdaemon.net import acceptor
from simdaemon.net.acceptor import EventDrivenDUL
from simdaemon.net.commands import command_set
from tests import scu
from tests.adversarial import pdus
from tests.conftest import CLIENT, MakeDaemon

VERIFICATION = "1.2.840.10008.1.1"


def echo_response(replied: int) -> bytes:
    """A C-ECHO-RSP command set (success) answering message ``replied``."""
    return command_set(
        [
            (0x0002, (VERIFICATION, b"\0")),
            (0x0100, 0x8030),  # C-ECHO-RSP
            (0x0120, replied),
            (0x0800, 0x0101),
            (0x0900, 0x0000),
        ]
    )


def answered(body: bytes) -> int:
    """The Message ID Being Responded To (0000,0120) of a P-DATA-TF holding one command."""
    command = body[6:]  # item length (4), context ID (1), message control header (1)
    at = 0
    while at < len(command):
        group, element, length = struct.unpack_from("<HHI", command, at)
        if (group, element) == (0x0000, 0x0120):
            return int(struct.unpack_from("<H", command, at + 8)[0])
        at += 8 + length
    raise AssertionError(f"no (0000,0120) in {command!r}")


def pdata(context_id: int, command: bytes) -> P_DATA:
    primitive = P_DATA()
    primitive.presentation_data_value_list.append((context_id, b"\x03" + command))
    return primitive


def record_send_now(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each ``EventDrivenDUL._send_now`` call returned (True: sent by its caller)."""
    sent_now: list[bool] = []
    send_now = EventDrivenDUL._send_now

    def recording(self: EventDrivenDUL, primitive: P_DATA) -> bool:
        sent = send_now(self, primitive)
        sent_now.append(sent)
        return sent

    monkeypatch.setattr(EventDrivenDUL, "_send_now", recording)
    return sent_now


def test_a_response_never_overtakes_one_queued_before_it(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = simdaemon.server.handle_echo
    sent_now: list[bool] = []

    def echo_after_two_more(event: Any, context: Any, plan: Any) -> Any:
        dul = event.assoc.dul
        context_id = event.context.context_id
        with dul._machine:  # the reactor takes no turn meanwhile: 101 stays queued
            DULServiceProvider.send_pdu(dul, pdata(context_id, echo_response(101)))
            # Queued, not yet sent: this one must go behind it, not straight to the socket.
            sent_now.append(dul._send_now(pdata(context_id, echo_response(102))))
            if not sent_now[-1]:
                DULServiceProvider.send_pdu(dul, pdata(context_id, echo_response(102)))
        dul._wake()
        return answer(event, context, plan)

    monkeypatch.setattr(simdaemon.server, "handle_echo", echo_after_two_more)
    daemon = make_daemon(trusted=[CLIENT])
    raw = associate_and_echo(daemon)
    try:
        order = []
        for _ in range(3):
            received = pdus.read_pdu(raw)
            assert received is not None
            assert received[0] == pdus.P_DATA
            order.append(answered(received[1]))
    finally:
        raw.close()
    assert sent_now == [False]
    assert order == [101, 102, 7]


def associate_and_echo(daemon: Any) -> socket.socket:
    """A raw connection, associated as CLIENT, that has sent C-ECHO-RQ 7."""
    raw = pdus.connect(daemon.address)
    raw.sendall(pdus.associate_rq(CLIENT["ae_title"], daemon.ae_title))
    accepted = pdus.read_pdu(raw)
    assert accepted is not None
    assert accepted[0] == pdus.ASSOCIATE_AC
    request = command_set(
        [
            (0x0002, (VERIFICATION, b"\0")),
            (0x0100, 0x0030),  # C-ECHO-RQ
            (0x0110, 7),
            (0x0800, 0x0101),
        ]
    )
    value = b"\x01\x03" + request  # context 1, last command fragment
    raw.sendall(pdus.header(pdus.P_DATA, 4 + len(value)) + struct.pack(">L", len(value)) + value)
    return raw


def test_answers_leave_from_the_thread_that_made_them(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent_now = record_send_now(monkeypatch)
    # Never given up for a reactor's turn that a loaded machine stretches past 1 ms: with
    # nothing queued, no event waiting and a socket that takes them, every answer goes now.
    monkeypatch.setattr(acceptor, "SEND_NOW_WAIT_S", 30.0)
    daemon = make_daemon(trusted=[CLIENT])
    assoc = scu.associate(daemon)
    try:
        statuses = [assoc.send_c_echo().Status for _ in range(20)]
    finally:
        assoc.release()
    assert statuses == [0x0000] * 20
    assert sent_now == [True] * 20


def test_an_answer_to_a_connection_gone_ends_the_association_and_the_daemon_serves_on(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = simdaemon.server.handle_echo
    broken: list[Any] = []

    def echo_on_a_broken_connection(event: Any, context: Any, plan: Any) -> Any:
        if not broken:  # the first answer's send fails: nothing can be written any more
            broken.append(event.assoc)
            event.assoc.dul.socket.socket.shutdown(socket.SHUT_WR)
        return answer(event, context, plan)

    sent_now = record_send_now(monkeypatch)
    monkeypatch.setattr(acceptor, "SEND_NOW_WAIT_S", 30.0)
    monkeypatch.setattr(simdaemon.server, "handle_echo", echo_on_a_broken_connection)
    daemon = make_daemon(trusted=[CLIENT])
    raw = associate_and_echo(daemon)
    try:
        assert pdus.read_pdu(raw) is None  # the daemon's side is shut: no answer
        # The peer keeps its end open: the failed send alone must end the association.
        (served,) = broken
        served.dul.join(10)
        served.join(10)
        assert not served.dul.is_alive()
        assert not served.is_alive()
        assert served.dul.state_machine.current_state == "Sta1"
    finally:
        raw.close()
    assert sent_now[0] is True  # the answer went by the calling thread, and failed there
    assoc = scu.associate(daemon)
    try:
        assert assoc.send_c_echo().Status == 0x0000
    finally:
        assoc.release()
    daemon.raise_errors()


def test_evt9_in_sta6_is_still_dt1() -> None:
    """_send_now runs Evt9 in Sta6 itself, as the one action that sends a P-DATA there."""
    assert TRANSITION_TABLE[("Evt9", "Sta6")] == "DT-1"
