"""pynetdicom associations as the client opens them: timeouts, no Nagle, no lost responses."""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.association import Association

__all__ = ["open_association"]

UNCOMPRESSED = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"]


def _no_delay(event: evt.Event) -> None:
    """Send each PDU at once: small requests must not wait for Nagle's algorithm."""
    sock = event.assoc.dul.socket
    if sock is not None and sock.socket is not None:
        sock.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def _keep_responses(assoc: Association) -> None:
    """Put back a response pynetdicom's own loop took from a waiting ``send_*`` call.

    ``send_c_store`` and its siblings pause the association's loop before sending, but the
    pause can land just after the loop passed its checkpoint; the loop then takes the
    response, finds it is not a request and drops it, and the call waits out its timeout
    (pynetdicom issue #875). A daemon that answers within microseconds makes that likely.
    """
    serve = assoc._serve_request

    def serve_or_put_back(msg: Any, context_id: int) -> None:
        if msg.is_valid_response:
            waiting = assoc.dimse.msg_queue
            with waiting.mutex:  # at the front: responses keep the order they came in
                waiting.queue.appendleft((context_id, msg))
                waiting.not_empty.notify()
            return
        serve(msg, context_id)

    assoc._serve_request = serve_or_put_back  # type: ignore[method-assign]


def open_association(
    calling: str,
    host: str,
    port: int,
    called: str,
    contexts: Sequence[str],
    *,
    connect_timeout: float,
    idle_timeout: float,
) -> Association:
    """Request an association proposing ``contexts`` (uncompressed syntaxes)."""
    ae = AE(ae_title=calling)
    ae.connection_timeout = connect_timeout
    ae.acse_timeout = connect_timeout
    ae.network_timeout = idle_timeout
    ae.dimse_timeout = idle_timeout
    for context in contexts:
        ae.add_requested_context(context, UNCOMPRESSED)
    assoc = ae.associate(host, port, ae_title=called, evt_handlers=[(evt.EVT_CONN_OPEN, _no_delay)])
    _keep_responses(assoc)
    return assoc
