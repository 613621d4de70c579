"""C-STORE straight on the socket of the daemon's association to a C-MOVE destination.

``DirectStore`` bypasses pynetdicom's state machine and DIMSE layer for the one exchange a
move repeats; these tests hold it to what pynetdicom's receiver sees and to what happens when
the receiver does anything but answer.
"""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE, evt
from pynetdicom.association import Association
from pynetdicom.dimse_messages import C_STORE_RSP
from pynetdicom.dimse_primitives import C_ECHO, C_STORE
from pynetdicom.dsutils import encode
from pynetdicom.pdu import P_DATA_TF
from pynetdicom.pdu_primitives import P_DATA

from simdaemon.net import direct
from simdaemon.net.commands import command_set
from simdaemon.net.direct import DirectStore
from simdaemon.net.outgoing import QuickAckAE, keep_responses

ECHO = "1.2.840.10008.1.1"
#: How long a test waits for an association to end; a bound, not a synchronisation.
JOIN_S = 10


@dataclass
class Destination:
    """A pynetdicom storage SCP whose C-STORE handler a test scripts."""

    handler: Callable[[Any], int]
    maximum_pdu: int = 16382
    pdu_lengths: list[int] = field(default_factory=list)
    received: list[tuple[bytes, str, int]] = field(default_factory=list)
    echo_answered: threading.Event = field(default_factory=threading.Event)
    echo_request: threading.Event = field(default_factory=threading.Event)

    def on_store(self, event: Any) -> int:
        request = event.request
        self.received.append(
            (
                event.request.DataSet.getvalue(),
                str(request.MoveOriginatorApplicationEntityTitle).strip(),
                int(request.MoveOriginatorMessageID),
            )
        )
        return self.handler(event)

    def on_pdu(self, event: Any) -> None:
        if isinstance(event.pdu, P_DATA_TF):
            self.pdu_lengths.append(len(event.pdu.encode()) - 6)

    def on_dimse(self, event: Any) -> None:
        if type(event.message).__name__ == "C_ECHO_RSP":
            self.echo_answered.set()
        if type(event.message).__name__ == "C_ECHO_RQ":
            self.echo_request.set()


@pytest.fixture
def destination() -> Iterator[Callable[..., tuple[Destination, Association]]]:
    """Start a scripted destination; return it with a QuickAckAE's association to it."""
    servers: list[Any] = []
    associations: list[Association] = []

    def start(
        handler: Callable[[Any], int], maximum_pdu: int = 16382
    ) -> tuple[Destination, Association]:
        scripted = Destination(handler, maximum_pdu)
        scp = AE(ae_title="DEST")
        scp.maximum_pdu_size = maximum_pdu
        scp.add_supported_context(CTImageStorage, ExplicitVRLittleEndian)
        scp.add_supported_context(ECHO)
        server = scp.start_server(
            ("127.0.0.1", 0),
            block=False,
            evt_handlers=[
                (evt.EVT_C_STORE, scripted.on_store),
                (evt.EVT_PDU_RECV, scripted.on_pdu),
                (evt.EVT_DIMSE_RECV, scripted.on_dimse),
            ],
        )
        servers.append(server)
        ae = QuickAckAE(ae_title="VMSDBD")
        ae.add_requested_context(CTImageStorage, ExplicitVRLittleEndian)
        ae.add_requested_context(ECHO)
        ae.add_supported_context(ECHO)
        # As the daemon's own associations (services.move._connect): the loop puts back a
        # response it took, so a store that handed a surprise to pynetdicom still gets it.
        assoc = keep_responses(
            ae.associate("127.0.0.1", int(server.server_address[1]), ae_title="DEST")
        )
        assert assoc.is_established
        associations.append(assoc)
        return scripted, assoc

    yield start
    for assoc in associations:
        if assoc.is_established:
            assoc.abort()
    for server in servers:
        server.shutdown()


def data_set(rows: int = 256) -> bytes:
    """An encoded CT image (Explicit VR Little Endian) of ``rows`` x 256 16-bit pixels."""
    ds = Dataset()
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = "Direct^Store"
    ds.Rows = rows
    ds.Columns = 256
    ds.BitsAllocated = 16
    ds.PixelData = bytes(range(256)) * (rows * 2)
    encoded = encode(ds, False, True)
    assert encoded is not None
    return encoded


def store(assoc: Association, data: list[bytes | memoryview], timeout: float = 30) -> int | None:
    cx = next(c for c in assoc.accepted_contexts if c.abstract_syntax == CTImageStorage)
    sender = DirectStore(assoc, timeout)
    assert sender.usable
    return sender.store(int(cx.context_id or 0), CTImageStorage, "1.2.3.4", data, ("MOVESCU", 7))


@pytest.mark.parametrize("maximum_pdu", [16382, 1024, 0])
def test_a_data_set_in_pieces_arrives_whole_in_pdus_the_receiver_accepts(
    destination: Callable[..., tuple[Destination, Association]], maximum_pdu: int
) -> None:
    scripted, assoc = destination(lambda event: 0x0000, maximum_pdu)
    encoded = data_set()
    view = memoryview(encoded)
    pieces: list[bytes | memoryview] = [view[:1000], b"", view[1000:70_001], view[70_001:]]
    assert store(assoc, pieces) == 0x0000
    assert scripted.received == [(encoded, "MOVESCU", 7)]
    if maximum_pdu:
        assert max(scripted.pdu_lengths) <= maximum_pdu
        assert len(scripted.pdu_lengths) == 1 + -(-len(encoded) // (maximum_pdu - 6))
    else:
        assert len(scripted.pdu_lengths) == 2  # the command, then the data set in one PDU


@pytest.mark.parametrize("code", [0x0000, 0xB000, 0xA700, 0xC211])
def test_the_receivers_status_is_what_store_returns(
    destination: Callable[..., tuple[Destination, Association]], code: int
) -> None:
    _, assoc = destination(lambda event: code)
    assert store(assoc, [data_set(4)]) == code


def test_the_association_works_through_pynetdicom_after_direct_stores(
    destination: Callable[..., tuple[Destination, Association]],
) -> None:
    scripted, assoc = destination(lambda event: 0x0000)
    assert [store(assoc, [data_set(4)]) for _ in range(3)] == [0, 0, 0]
    echo = assoc.send_c_echo()
    assert echo.Status == 0x0000
    assoc.release()
    assert assoc.is_released
    assert len(scripted.received) == 3


def test_a_receiver_that_aborts_ends_the_association(
    destination: Callable[..., tuple[Destination, Association]],
) -> None:
    def abort(event: Any) -> int:
        event.assoc.abort()
        return 0x0000

    _, assoc = destination(abort)
    assert store(assoc, [data_set(4)]) is None
    assoc.join(JOIN_S)
    assert assoc.is_aborted
    assert not DirectStore(assoc, 30).usable


def test_a_receiver_that_closes_the_connection_ends_the_association(
    destination: Callable[..., tuple[Destination, Association]],
) -> None:
    def close(event: Any) -> int:
        event.assoc.dul.socket.socket.shutdown(2)
        return 0x0000

    _, assoc = destination(close)
    assert store(assoc, [data_set(4)]) is None
    assoc.join(JOIN_S)
    assert not assoc.is_established


def test_no_response_within_the_timeout_aborts_the_association(
    destination: Callable[..., tuple[Destination, Association]],
) -> None:
    answer = threading.Event()

    def hold(event: Any) -> int:
        answer.wait(JOIN_S)
        return 0x0000

    _, assoc = destination(hold)
    try:
        assert store(assoc, [data_set(4)], timeout=0.3) is None
        assoc.join(JOIN_S)
        assert assoc.is_aborted
    finally:
        answer.set()


def test_a_request_from_the_receiver_before_its_response_is_served_through_pynetdicom(
    destination: Callable[..., tuple[Destination, Association]],
) -> None:
    """The peer's C-ECHO-RQ is no C-STORE-RSP: handed to pynetdicom, answered, then the wait
    for the response goes on there."""
    echo = command_set([(0x0002, (ECHO, b"\0")), (0x0100, 0x0030), (0x0110, 99),
                        (0x0800, 0x0101)])  # fmt: skip

    def echo_first(event: Any) -> int:
        cx = next(c for c in event.assoc.accepted_contexts if c.abstract_syntax == ECHO)
        pdv = struct.pack(">LBB", len(echo) + 2, int(cx.context_id or 0), 0x03) + echo
        event.assoc.dul.socket.send(struct.pack(">BBL", 4, 0, len(pdv)) + pdv)
        return 0xB000

    scripted, assoc = destination(echo_first)
    assert store(assoc, [data_set(4)]) == 0xB000
    assert scripted.echo_answered.wait(JOIN_S)
    assert store(assoc, [data_set(4)]) == 0xB000  # and the association goes on


def test_the_response_is_read_from_the_command_pynetdicom_encodes() -> None:
    response = C_STORE()
    response.MessageIDBeingRespondedTo = 5
    response.AffectedSOPClassUID = CTImageStorage
    response.AffectedSOPInstanceUID = "1.2.3"
    response.Status = 0xB007
    message = C_STORE_RSP()
    message.primitive_to_message(response)
    pdvs = [bytes(p.presentation_data_value_list[0][1]) for p in message.encode_msg(1, 16382)]
    command = b"".join(pdv[1:] for pdv in pdvs if pdv[0] & 0x01)
    assert direct._status(command, 5) == 0xB007
    assert direct._status(command, 6) is None  # a response to another request


def test_fragments_carry_the_pieces_with_the_flags_of_their_kind() -> None:
    pieces = [b"abc", memoryview(b"defgh"), b"", b"ij"]
    pdus = b"".join(bytes(part) for part in direct._fragments(pieces, 4, 9, (0x01, 0x03)))
    values, flags = [], []
    while pdus:
        kind, _, length = struct.unpack_from(">BBL", pdus)
        item, context, flag = struct.unpack_from(">LBB", pdus, 6)
        assert (kind, context, item) == (4, 9, length - 4)
        values.append(pdus[12 : 6 + length])
        flags.append(flag)
        pdus = pdus[6 + length :]
    assert values == [b"abcd", b"efgh", b"ij"]
    assert flags == [0x01, 0x01, 0x03]


def test_a_response_cut_off_mid_pdu_ends_the_association_without_waiting_on(
    destination: Callable[..., tuple[Destination, Association]],
) -> None:
    """A timeout inside a PDU leaves the stream out of step: the connection is closed."""
    answer = threading.Event()

    def half_a_pdu(event: Any) -> int:
        event.assoc.dul.socket.send(struct.pack(">BBL", 4, 0, 100) + bytes(10))
        answer.wait(JOIN_S)
        return 0x0000

    _, assoc = destination(half_a_pdu)
    try:
        assert store(assoc, [data_set(4)], timeout=0.3) is None
        assoc.join(JOIN_S)
        assert not assoc.is_established
        assert not assoc.dul.is_alive()
    finally:
        answer.set()


def test_nothing_queued_is_sent_while_the_socket_is_lent(
    destination: Callable[..., tuple[Destination, Association]],
) -> None:
    """An abort or a response pynetdicom queues meanwhile would land inside the borrower's
    PDUs: the DUL leaves it queued until the loan ends, then sends it."""
    scripted, assoc = destination(lambda event: 0x0000)
    dul: Any = assoc.dul
    echo = C_ECHO()
    echo.MessageID = 99
    echo.AffectedSOPClassUID = ECHO
    cx = next(c for c in assoc.accepted_contexts if c.abstract_syntax == ECHO)
    with dul.lend_socket(5) as raw:
        assert raw is not None
        with dul.to_provider_queue.mutex:  # queued without waking the DUL, then asked
            dul.to_provider_queue.queue.append(P_DATA())
        assert dul._process_recv_primitive() is False
        assert dul.event_queue.empty()
        dul.to_provider_queue.queue.clear()
    assoc.dimse.send_msg(echo, int(cx.context_id or 0))  # after the loan: sent at once
    assert scripted.echo_request.wait(JOIN_S)
