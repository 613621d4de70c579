"""DIMSE command sets encoded by hand: the bytes pynetdicom encodes, and when they are used."""

from __future__ import annotations

import types
from io import BytesIO
from typing import Any

import pytest
from pydicom.uid import CTImageStorage
from pynetdicom import AE, evt
from pynetdicom.dimse_messages import C_MOVE_RSP, C_STORE_RQ, C_STORE_RSP
from pynetdicom.dimse_primitives import C_MOVE, C_STORE

from simdaemon.net import commands
from simdaemon.net.outgoing import quiet_standard_logging
from tests import objects, scu
from tests.conftest import CLIENT, MakeDaemon


def pynetdicom_command(primitive: Any, message: Any) -> bytes:
    """The command set pynetdicom encodes for ``primitive`` (without the PDV header byte)."""
    encoded = message()
    encoded.primitive_to_message(primitive)
    first = next(iter(encoded.encode_msg(1, 16382)))
    return bytes(first.presentation_data_value_list[0][1][1:])


@pytest.mark.parametrize("title", ["MOVESCU", "ODD"])
def test_the_hand_encoded_c_store_request_is_pynetdicoms(title: str) -> None:
    request = C_STORE()
    request.MessageID = 1
    request.AffectedSOPClassUID = CTImageStorage
    request.AffectedSOPInstanceUID = "1.2.826.0.1.3680043.10.1234.5"  # odd length
    request.Priority = 2
    request.MoveOriginatorApplicationEntityTitle = title
    request.MoveOriginatorMessageID = 7
    request.DataSet = BytesIO(b"\0\0")
    ours = commands.store_request(1, CTImageStorage, "1.2.826.0.1.3680043.10.1234.5", (title, 7))
    assert ours == pynetdicom_command(request, C_STORE_RQ)


def test_the_hand_encoded_pending_move_response_is_pynetdicoms() -> None:
    response = C_MOVE()
    response.MessageIDBeingRespondedTo = 3
    response.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.2.2.2"
    response.Status = 0xFF00
    response.NumberOfRemainingSuboperations = 65535
    response.NumberOfCompletedSuboperations = 1
    response.NumberOfFailedSuboperations = 2
    response.NumberOfWarningSuboperations = 3
    sent: list[Any] = []
    assoc: Any = types.SimpleNamespace(
        dul=types.SimpleNamespace(send_pdu=sent.append),
        dimse=types.SimpleNamespace(maximum_pdu_size=16382),
    )
    assert commands.send_move_pending(assoc, 5, 3, "1.2.840.10008.5.1.4.1.2.2.2", (65535, 1, 2, 3))
    ((context_id, pdv),) = sent[0].presentation_data_value_list
    assert context_id == 5
    assert pdv[:1] == b"\x03"  # command, last fragment
    assert pdv[1:] == pynetdicom_command(response, C_MOVE_RSP)


def test_a_peer_accepting_tiny_pdus_gets_nothing_from_the_hand_encoder() -> None:
    sent: list[Any] = []
    assoc: Any = types.SimpleNamespace(
        dul=types.SimpleNamespace(send_pdu=sent.append),
        dimse=types.SimpleNamespace(maximum_pdu_size=64),
    )
    assert not commands.send_move_pending(assoc, 1, 1, CTImageStorage, (1, 0, 0, 0))
    assert sent == []


def store_answer(status: int, comment: str | None = None, uid: str = "1.2.3.4.5") -> C_STORE:
    response = C_STORE()
    response.MessageIDBeingRespondedTo = 7
    response.AffectedSOPClassUID = CTImageStorage
    response.AffectedSOPInstanceUID = uid
    response.Status = status
    if comment is not None:
        response.ErrorComment = comment
    return response


@pytest.mark.parametrize(
    ("status", "comment", "uid"),
    [
        (0x0000, None, "1.2.3.4.5"),
        (0x0000, None, "1.2.3.4"),  # an even-length UID: no padding
        (0xB000, "text could not be decoded", "1.2.3.4.5"),
        (0xA900, "odd", "1.2.3.4.5"),  # an odd-length comment: one space of padding
        (0xC211, "x" * 64, "1.2.3.4.5"),
    ],
)
def test_the_hand_encoded_store_response_is_pynetdicoms(
    status: int, comment: str | None, uid: str
) -> None:
    response = store_answer(status, comment, uid)
    assert commands.store_response(response) == pynetdicom_command(response, C_STORE_RSP)


def test_a_store_response_with_what_the_encoder_does_not_know_is_left_to_pynetdicom() -> None:
    offending = store_answer(0xA900)
    offending.OffendingElement = [0x00100010]
    assert commands.store_response(offending) is None
    assert commands.store_response(store_answer(0xA900, "Müller")) is None
    assert commands.store_response(store_answer(0x0000, uid="")) is None


def test_the_daemon_answers_stores_with_hand_encoded_responses(
    make_daemon: MakeDaemon, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoded: list[bytes] = []
    encode = commands.store_response

    def recording(primitive: C_STORE) -> bytes | None:
        command = encode(primitive)
        encoded.append(command or b"")
        return command

    monkeypatch.setattr(commands, "store_response", recording)
    daemon = make_daemon(trusted=[CLIENT])
    good, bad = objects.ct(), objects.ct()
    del bad.PatientID  # refused by the import: a failure status with an Error Comment
    answers = scu.store(daemon, [good, bad])
    good_answer, bad_answer = answers
    assert good_answer.Status == 0x0000
    assert bad_answer.Status not in (0x0000, None)
    assert str(bad_answer.ErrorComment)  # the comment arrived, decoded by pynetdicom
    assert len(encoded) == 2
    assert all(encoded)


@pytest.mark.parametrize("bound", [False, True])
def test_responses_go_through_pynetdicom_while_something_is_bound_to_dimse_sent(
    bound: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_hand: list[bytes] = []
    send = commands._send_command

    def counting(assoc: Any, context_id: int, command: bytes) -> None:
        by_hand.append(command)
        send(assoc, context_id, command)

    monkeypatch.setattr(commands, "_send_command", counting)
    seen: list[str] = []

    def on_requested(event: evt.Event) -> None:
        quiet_standard_logging(event.assoc)
        commands.hand_encode_store_responses(event.assoc)
        if bound:
            event.assoc.bind(evt.EVT_DIMSE_SENT, lambda e: seen.append(type(e.message).__name__))

    scp = AE()
    scp.add_supported_context(CTImageStorage)
    server = scp.start_server(
        ("127.0.0.1", 0),
        block=False,
        evt_handlers=[(evt.EVT_REQUESTED, on_requested), (evt.EVT_C_STORE, lambda e: 0xB000)],
    )
    try:
        ae = AE()
        ae.add_requested_context(CTImageStorage)
        assoc = ae.associate("127.0.0.1", int(server.server_address[1]))
        assert assoc.is_established
        answer = assoc.send_c_store(objects.ct())
        assoc.release()
    finally:
        server.shutdown()
    assert answer.Status == 0xB000
    assert seen == (["C_STORE_RSP"] if bound else [])
    assert len(by_hand) == (0 if bound else 1)
