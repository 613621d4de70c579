"""C-STORE requests and their responses straight on a requested association's socket.

A C-MOVE sends every slice of a series over one association, one C-STORE at a time. Through
pynetdicom each 512 KiB slice is some 34 primitives, each a pass of the DUL's state machine,
a PDU object encoded by concatenating bytes and a ``send`` of its own; the response is read,
decoded into a PDU object, passed through the state machine and a queue and its command set
decoded by pydicom. That was most of the daemon's CPU per moved slice, and a receiver waiting
on the sender (one C-STORE at a time) feels every millisecond of it.

:class:`DirectStore` does the same exchange on the association's own socket while its
:class:`~simdaemon.net.outgoing.WakingDUL` lends it (reading nothing meanwhile): the command
and data PDUs go out in one gathering ``sendmsg`` whose data pieces are views of the stored
file, and the response's PDUs are read and its command set parsed by hand. The state machine
stays in Sta6 (data transfer), where this exchange leaves it. Anything but the expected
C-STORE-RSP - an A-ABORT, a release request, a closed connection, another message, a PDU
pynetdicom cannot decode - is handed to the DUL exactly as its own reader would have, so
pynetdicom's rules answer it; an unexpected DIMSE message is then awaited through pynetdicom.

Only for plain TCP (``sendmsg`` has no TLS form); the caller falls back to pynetdicom otherwise.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import struct
from collections.abc import Callable, Iterator, Sequence
from typing import Any, cast

from pynetdicom.association import Association
from pynetdicom.dimse_primitives import C_STORE

from simdaemon.net import outgoing
from simdaemon.net.commands import store_request
from simdaemon.net.outgoing import WakingDUL

__all__ = ["DirectStore"]

LOGGER = logging.getLogger(__name__)

_PDU_HEADER = struct.Struct(">BBL")
#: A P-DATA-TF header and its one PDV item's header: PDU type, reserved, PDU length, item
#: length, presentation context ID, message control header.
_PDATA_HEADER = struct.Struct(">BBLLBB")
_ELEMENT = struct.Struct("<HHI")
_U16 = struct.Struct("<H")
_P_DATA_TF = 0x04
#: The largest PDU read from a receiver when its association does not bound it (our maximum
#: is what we advertised; a C-STORE-RSP is some 100 bytes).
_READ_LIMIT = 1 << 20
#: ``sendmsg`` takes at most IOV_MAX (1024 on Linux) buffers at once.
_IOV_MAX = 1024


class _Surprise(Exception):
    """The peer sent something other than the awaited response: pynetdicom's to handle."""


class _Closed(Exception):
    """The connection closed in the middle of the exchange."""


class _Broken(Exception):
    """A timeout in the middle of a PDU (sent or read): the stream is out of step for good."""


def _fragments(
    pieces: Sequence[bytes | memoryview], size: int, context_id: int, flags: tuple[int, int]
) -> Iterator[bytes | memoryview]:
    """The P-DATA-TF PDUs carrying ``pieces`` joined, as headers and views of the pieces.

    Each PDV holds at most ``size`` bytes of value; ``flags`` are the message control headers
    of every fragment but the last and of the last (0x01/0x03: command, 0x00/0x02: data set).
    """
    total = sum(len(p) for p in pieces)
    views = iter([memoryview(p).cast("B") for p in pieces if len(p)])
    current = next(views, memoryview(b""))
    sent = 0
    while True:
        length = min(size, total - sent)
        sent += length
        flag = flags[1] if sent >= total else flags[0]
        yield _PDATA_HEADER.pack(_P_DATA_TF, 0, length + 6, length + 2, context_id, flag)
        while length:
            if not len(current):
                current = next(views)
            part = current[:length]
            current = current[length:]
            length -= len(part)
            yield part
        if sent >= total:
            return


def _send_all(raw: socket.socket, buffers: list[bytes | memoryview]) -> None:
    """Write every buffer, in order, with as few system calls as the kernel allows.

    A timeout raises :class:`_Broken`: part of a PDU may have gone out.
    """
    pending = [memoryview(b).cast("B") for b in buffers]
    first = 0
    while first < len(pending):
        try:
            sent = raw.sendmsg(pending[first : first + _IOV_MAX])
        except TimeoutError:
            raise _Broken from None
        while sent:
            head = pending[first]
            if sent >= len(head):
                sent -= len(head)
                first += 1
            else:
                pending[first] = head[sent:]
                sent = 0


def _recv_exact(raw: socket.socket, size: int, *, starts_pdu: bool = False) -> bytearray:
    """Read exactly ``size`` bytes, asking for a quick ACK after each piece (Nagle's peers).

    A timeout before the first byte of a PDU (``starts_pdu``) is a plain ``TimeoutError``:
    no answer came. Anywhere else it raises :class:`_Broken`.
    """
    data = bytearray(size)
    view = memoryview(data)
    done = 0
    while done < size:
        try:
            count = raw.recv_into(view[done:], size - done)
        except TimeoutError:
            if starts_pdu and not done:
                raise
            raise _Broken from None
        outgoing.quick_ack(raw)  # looked up each time, so a test can watch it
        if not count:
            raise _Closed
        done += count
    return data


def _status(command: bytes | bytearray, message_id: int) -> int | None:
    """The Status of a C-STORE-RSP to ``message_id`` without a data set; ``None`` otherwise."""
    fields: dict[int, int] = {}
    pos = 0
    while pos + 8 <= len(command):
        group, element, length = _ELEMENT.unpack_from(command, pos)
        pos += 8
        if group == 0 and length == 2 and pos + 2 <= len(command):
            fields[element] = _U16.unpack_from(command, pos)[0]
        pos += length
    if (
        fields.get(0x0100) != 0x8001  # C-STORE-RSP
        or fields.get(0x0120) != message_id
        or fields.get(0x0800) != 0x0101  # no data set
        or 0x0900 not in fields
    ):
        return None
    return fields[0x0900]


class DirectStore:
    """Sends C-STORE requests on ``assoc`` (requested by a QuickAckAE) itself, one at a time.

    After a surprise handed to pynetdicom, the response is awaited on the DIMSE queue while
    the association's own loop may also look there: ``assoc`` must go through
    :func:`~simdaemon.net.outgoing.keep_responses` (as every association the daemon
    requests does), or the loop can take the response and drop it.
    """

    def __init__(self, assoc: Association, timeout: float) -> None:
        self.assoc = assoc
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._meanwhile_error: Exception | None = None

    @property
    def usable(self) -> bool:
        """Whether the association is in data transfer with nothing pending, on plain TCP
        with ``sendmsg`` (not on Windows), to a peer whose maximum PDU holds a byte of value."""
        dul = self.assoc.dul
        sock = dul.socket
        raw = sock.socket if sock is not None else None
        maximum = int(self.assoc.dimse.maximum_pdu_size or 0)
        return (
            isinstance(dul, WakingDUL)
            and type(raw) is socket.socket
            and hasattr(raw, "sendmsg")
            and (maximum == 0 or maximum > 6)
            and self.assoc.is_established
            and dul.state_machine.current_state == "Sta6"
            and dul.event_queue.empty()
            and not dul.to_provider_queue.queue
        )

    def store(
        self,
        context_id: int,
        sop_class: str,
        sop_instance: str,
        data: Sequence[bytes | memoryview],
        originator: tuple[str, int],
        meanwhile: Callable[[], None] | None = None,
    ) -> int | None:
        """Send one C-STORE-RQ with the data set ``data`` (pieces, joined); return its Status.

        ``None`` when no response came: the connection closed or was aborted (handed to the
        DUL, which ends the association), or none came within ``timeout`` (the association is
        then aborted, as pynetdicom's ``send_c_store`` does). ``meanwhile`` runs once the
        request is sent, while the receiver works on it (a move reads its next slice then);
        its exception, if any, is raised once the exchange is over.
        """
        self._meanwhile_error = None
        code = self._exchange(context_id, sop_class, sop_instance, data, originator, meanwhile)
        error, self._meanwhile_error = self._meanwhile_error, None
        if error is not None:
            raise error
        return code

    def _exchange(
        self,
        context_id: int,
        sop_class: str,
        sop_instance: str,
        data: Sequence[bytes | memoryview],
        originator: tuple[str, int],
        meanwhile: Callable[[], None] | None,
    ) -> int | None:
        """:meth:`store`, but for raising what ``meanwhile`` raised."""
        message_id = next(self._ids) & 0xFFFF
        command = store_request(message_id, sop_class, sop_instance, originator)
        maximum = int(self.assoc.dimse.maximum_pdu_size or 0)  # the receiver's
        size = maximum - 6 if maximum else max(len(command), sum(len(p) for p in data), 1)
        buffers = [
            *_fragments([command], size, context_id, (0x01, 0x03)),
            *_fragments(data, size, context_id, (0x00, 0x02)),
        ]
        dul: WakingDUL = self.assoc.dul  # type: ignore[assignment]
        read: list[bytes] = []
        ending = "timeout"
        with dul.lend_socket(self.timeout) as raw:
            if raw is None:  # the DUL is stuck in a PDU the peer never finished sending
                LOGGER.error(
                    "the association to '%s' is stuck reading", self.assoc.acceptor.ae_title
                )
            else:
                previous = raw.gettimeout()
                raw.settimeout(self.timeout)
                try:
                    _send_all(raw, buffers)
                    if meanwhile is not None:
                        self._run(meanwhile)
                    return self._response(raw, dul, message_id, read)
                except _Surprise:
                    dul.hand_over(read)
                    ending = "surprise"
                except TimeoutError:
                    LOGGER.error("no C-STORE-RSP from '%s' within %s s",
                                 self.assoc.acceptor.ae_title, self.timeout)  # fmt: skip
                except (_Closed, _Broken, OSError) as error:
                    LOGGER.warning("the connection to '%s' ended during a C-STORE: %r",
                                   self.assoc.acceptor.ae_title, error)  # fmt: skip
                    dul.hand_over(read)
                    if isinstance(error, _Broken):  # no PDU can follow: close, as a peer would
                        with contextlib.suppress(OSError):
                            raw.shutdown(socket.SHUT_RDWR)
                    dul.event_queue.put("Evt17")  # transport connection closed, as upstream
                    return None
                finally:
                    with contextlib.suppress(OSError):
                        raw.settimeout(previous)
        if ending == "timeout":
            self.assoc.abort()  # as pynetdicom's send_c_store does
            return None
        return self._through_pynetdicom(message_id)

    def _run(self, meanwhile: Callable[[], None]) -> None:
        try:
            meanwhile()
        except Exception as error:  # noqa: BLE001 - raised by store(), after the exchange
            self._meanwhile_error = error

    def _response(
        self, raw: socket.socket, dul: WakingDUL, message_id: int, read: list[bytes]
    ) -> int:
        """Read PDUs until the C-STORE-RSP to ``message_id`` is whole; return its Status."""
        limit = int(self.assoc.requestor.maximum_length or 0) or _READ_LIMIT  # ours
        command = bytearray()
        while True:
            header = bytes(_recv_exact(raw, 6, starts_pdu=True))
            kind, _, length = _PDU_HEADER.unpack(header)
            if length > max(limit, 65536):
                raise _Broken  # no receiver sends a response this large: give up the link
            body = _recv_exact(raw, length)
            read.append(header + body)
            dul.idle_timer_restart()
            if kind != _P_DATA_TF:
                raise _Surprise
            pos = 0
            while pos + 6 <= length:
                (item_length,) = struct.unpack_from(">L", body, pos)
                flag = body[pos + 5]
                if item_length < 2 or not flag & 0x01:
                    raise _Surprise  # a data set fragment: not a C-STORE-RSP's
                command += body[pos + 6 : pos + 4 + item_length]
                pos += 4 + item_length
                if flag & 0x02:
                    code = _status(command, message_id)
                    if code is None or pos != length:
                        raise _Surprise
                    return code

    def _through_pynetdicom(self, message_id: int) -> int | None:
        """After a surprise handed to the DUL: the response as pynetdicom delivers it.

        A request from the peer that arrives first is served, as the association's loop
        would; a response to anything else is dropped (logged). ``None``: nothing came within
        the DIMSE timeout, or the association ended.
        """
        while True:
            context_id, message = self.assoc.dimse.get_msg(block=True)
            if message is None:
                if self.assoc.is_established:
                    self.assoc.abort()  # the DIMSE timeout passed: as send_c_store does
                return None
            if message.is_valid_request:
                self.assoc._serve_request(message, cast(int, context_id))
                continue
            replied: Any = getattr(message, "MessageIDBeingRespondedTo", None)
            status: Any = getattr(message, "Status", None)
            if isinstance(message, C_STORE) and replied == message_id and status is not None:
                return int(status)
            LOGGER.warning("'%s' sent an unexpected %s; still waiting for the C-STORE-RSP",
                           self.assoc.acceptor.ae_title, type(message).__name__)  # fmt: skip
