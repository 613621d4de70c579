"""Making pynetdicom associations quick and reliable: the helpers each association needs.

Every association this project opens - the daemon's own to a C-MOVE destination, the tests'
and the benchmarks' clients - goes through :func:`keep_responses` and :func:`no_delay`; the
daemon's acceptor (:mod:`simdaemon.net.acceptor`) applies :func:`no_delay` and
:func:`quiet_standard_logging` to the associations it serves as well, and asks for
:func:`quick_ack` whenever data arrived. The daemon's own association to a C-MOVE destination
is requested by a :class:`QuickAckAE`, whose socket does the same. The client library keeps
its own copies (``dbdaemon_client.transport``), since it never imports simdaemon.
"""

from __future__ import annotations

import contextlib
import logging
import socket
from typing import Any

from pynetdicom import AE, evt
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.association import Association
from pynetdicom.transport import AddressInformation, AssociationSocket

__all__ = [
    "QuickAckAE",
    "QuickAckSocket",
    "keep_responses",
    "no_delay",
    "quick_ack",
    "quiet_standard_logging",
]

#: The most :meth:`QuickAckSocket.recv` asks the kernel for at once (upstream: 4 KiB).
_RECV_CHUNK = 65536

_STANDARD_LOG_HANDLERS = (
    (evt.EVT_DIMSE_RECV, standard_dimse_recv_handler),
    (evt.EVT_DIMSE_SENT, standard_dimse_sent_handler),
    (evt.EVT_PDU_RECV, standard_pdu_recv_handler),
    (evt.EVT_PDU_SENT, standard_pdu_sent_handler),
)


def quiet_standard_logging(assoc: Association) -> Association:
    """Unbind pynetdicom's standard log handlers while its log is quiet; return ``assoc``.

    They describe every PDU and DIMSE message for pynetdicom's log; with that log below INFO
    nothing prints, and they are pure cost on every PDU of every slice.
    """
    if not logging.getLogger("pynetdicom").isEnabledFor(logging.INFO):
        for event, handler in _STANDARD_LOG_HANDLERS:
            assoc.unbind(event, handler)
    return assoc


def no_delay(event: evt.Event) -> None:
    """An EVT_CONN_OPEN handler: send each PDU at once, not after Nagle's algorithm's wait.

    Small PDUs (responses, command sets) would otherwise wait for the peer's delayed ACK.
    """
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def keep_responses(assoc: Association) -> Association:
    """Stop pynetdicom's requestor loop from discarding the response a ``send_*`` awaits.

    ``send_c_store`` and its siblings pause the association's loop before sending, but the
    pause can land just after the loop has passed its checkpoint: the loop then takes the
    response off the DIMSE queue itself, finds it is not a request, logs "Received unexpected
    C-STORE-RSP service message" and drops it, and ``send_c_store`` waits out the DIMSE
    timeout (pynetdicom issue #875). A peer that answers within microseconds - this daemon,
    on a loaded machine - makes the window real. Responses the loop takes are put back for the
    ``send_*`` call waiting on the queue, in front of any that came after them. Returns
    ``assoc``.
    """
    serve = assoc._serve_request

    def serve_or_put_back(msg: Any, context_id: int) -> None:
        if msg.is_valid_response:
            waiting = assoc.dimse.msg_queue
            with waiting.mutex:  # back at the front: responses stay in the order they came
                waiting.queue.appendleft((context_id, msg))
                waiting.not_empty.notify()
            return
        serve(msg, context_id)

    assoc._serve_request = serve_or_put_back  # type: ignore[method-assign]
    return assoc


def quick_ack(raw: socket.socket) -> None:
    """Acknowledge the peer's segments at once instead of delaying the ACK (Linux only).

    DCMTK (3.6.2 and later) and Orthanc leave Nagle's algorithm on: the last, partial segment
    of what they send - a P-DATA, or the second piece of a C-STORE-RSP they write in two -
    waits until everything before it is acknowledged, and a receiver delaying its ACK then
    stalls the exchange 40 ms. Linux leaves quick-ACK mode by itself, so it is asked for again
    each time data arrives. Elsewhere (no ``TCP_QUICKACK``) this does nothing.
    """
    option = getattr(socket, "TCP_QUICKACK", None)
    if option is None:
        return
    with contextlib.suppress(OSError):  # already closed
        raw.setsockopt(socket.IPPROTO_TCP, option, 1)


class QuickAckSocket(AssociationSocket):
    """An association's socket that asks for a quick ACK whenever data arrived.

    pynetdicom's requestor DUL looks at :attr:`ready` every millisecond and then reads a whole
    PDU with :meth:`recv`, which blocks until it is in: the ACK is asked for when the socket
    becomes readable and again after every partial receive, so a peer with Nagle's algorithm
    on never waits for a delayed ACK in the middle of a PDU.
    """

    @property
    def ready(self) -> bool:
        """Upstream's ``ready``; when data is waiting, a quick ACK asked for first."""
        readable = bool(AssociationSocket.ready.fget(self))  # type: ignore[attr-defined]
        if readable and self.socket is not None:
            quick_ack(self.socket)
        return readable

    def recv(self, nr_bytes: int) -> bytearray:
        """Read ``nr_bytes`` (fewer if the peer closes), asking for a quick ACK after each piece.

        Upstream's ``recv`` with ``recv_into`` one buffer in pieces of up to 64 KiB (upstream:
        4 KiB pieces appended to a bytearray); blocking, like upstream.
        """
        raw = self.socket
        assert raw is not None
        data = bytearray(nr_bytes)
        view = memoryview(data)
        nr_read = 0
        while nr_read < nr_bytes:
            count = raw.recv_into(view[nr_read:], min(nr_bytes - nr_read, _RECV_CHUNK))
            if not count:  # the connection is broken: what we have so far, as upstream
                del view
                del data[nr_read:]
                return data
            nr_read += count
            if nr_read < nr_bytes:
                quick_ack(raw)
        return data


class QuickAckAE(AE):
    """A pynetdicom AE whose requested associations use a :class:`QuickAckSocket`."""

    def _create_socket(
        self,
        assoc: Association,
        address: AddressInformation,
        tls_args: tuple[Any, str] | None,
    ) -> AssociationSocket:
        """Upstream's ``_create_socket``, building a :class:`QuickAckSocket` instead."""
        sock = QuickAckSocket(assoc, address=address)
        sock.tls_args = tls_args
        return sock
