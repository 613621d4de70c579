"""The daemon's listening socket: accepting connections until ``stop()``, without polling.

socketserver's ``serve_forever`` checks for a shutdown request every half second, so
stopping a daemon would take up to that long. :meth:`Listener.serve_until_stopped` replaces it
(from Python's ``socketserver.BaseServer.serve_forever``): it waits on the listening socket
and on a wake-up socket that :meth:`Listener.stop_serving` writes to, with no poll interval,
and runs pynetdicom's ``service_actions`` (its periodic garbage collection) after each
connection rather than after each poll. Each connection is then served by the request handler
the daemon passes to ``AE.make_server``: :class:`~simdaemon.net.acceptor.EventDrivenRequestHandler`.

Every connection costs a socket and two threads (association and DUL) before the peer has
said who it is, so the listener counts the open ones and closes a connection beyond
``[limits] max_connections`` as soon as it is accepted (:meth:`Listener.verify_request`),
reporting it through the :class:`~simdaemon.net.guard.Guard` (rate-limited).
"""

from __future__ import annotations

import selectors
import socket
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

from pynetdicom.association import Association
from pynetdicom.transport import ThreadedAssociationServer

from simdaemon.net.guard import Guard, Incident

__all__ = ["Listener"]


class Listener(ThreadedAssociationServer):
    """pynetdicom's threaded server with a serve loop that ``stop()`` can wake at once."""

    def __init__(self, *args: Any, on_error: Callable[[BaseException], None], **kwargs: Any):
        #: DIMSE requests the daemon serves itself, by primitive type (see net.acceptor).
        self.services: dict[type, Callable[[Association, Any, int], None]] = {}
        #: The limits and the daemon's reporting, shared with every association.
        self.guard = Guard()
        #: Accepted sockets; a closed one (fileno -1) or a collected one no longer counts.
        self._connections: weakref.WeakSet[socket.socket] = weakref.WeakSet()
        self._wake_r, self._wake_w = socket.socketpair()
        self._stopping = threading.Event()
        self._on_error = on_error
        super().__init__(*args, **kwargs)

    def serve_until_stopped(self) -> None:
        """Accept connections until :meth:`stop_serving` is called."""
        listening = self.socket
        assert listening is not None
        with selectors.DefaultSelector() as selector:
            selector.register(listening, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = selector.select()
                if self._stopping.is_set():
                    break
                if any(key.fileobj is listening for key, _ in ready):
                    self._handle_request_noblock()  # type: ignore[attr-defined]
                    self.service_actions()

    @property
    def open_connections(self) -> int:
        """How many accepted connections are still open, associated or not."""
        return sum(1 for s in list(self._connections) if s.fileno() != -1)

    def verify_request(self, request: Any, client_address: Any) -> bool:
        """Admit a connection unless ``max_connections`` are open; socketserver closes it."""
        cap = self.guard.limits.max_connections
        if self.open_connections >= cap:
            self.guard.refuse(
                Incident(
                    operation="associate",
                    outcome="refused",
                    rule="connection-limit",
                    detail=(
                        f"{cap} connections already open, the limit; connection closed "
                        "at once ([limits] max_connections)"
                    ),
                    peer=_address(client_address),
                )
            )
            return False
        self._connections.add(request)
        return True

    def stop_serving(self) -> None:
        """Make :meth:`serve_until_stopped` return promptly."""
        self._stopping.set()
        self._wake_w.send(b"\0")

    def server_close(self) -> None:
        super().server_close()
        self._wake_r.close()
        self._wake_w.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep the exception of a failed connection thread instead of printing it."""
        error = sys.exc_info()[1]
        if error is not None:
            self._on_error(error)


def _address(client_address: Any) -> str:
    if isinstance(client_address, tuple) and len(client_address) >= 2:
        return f"{client_address[0]}:{client_address[1]}"
    return str(client_address)
