"""Making pynetdicom associations quick and reliable: the helpers each association needs.

Every association this project opens - the daemon's own to a C-MOVE destination, the tests'
and the benchmarks' clients - goes through :func:`keep_responses` and :func:`no_delay`; the
daemon's acceptor (:mod:`simdaemon.net.acceptor`) applies :func:`no_delay` and
:func:`quiet_standard_logging` to the associations it serves as well. The client library keeps
its own copies (``dbdaemon_client.transport``), since it never imports simdaemon.
"""

from __future__ import annotations

import logging
import socket
from typing import Any

from pynetdicom import evt
from pynetdicom._handlers import (
    standard_dimse_recv_handler,
    standard_dimse_sent_handler,
    standard_pdu_recv_handler,
    standard_pdu_sent_handler,
)
from pynetdicom.association import Association

__all__ = ["keep_responses", "no_delay", "quiet_standard_logging"]

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
