"""Forcing the thread interleavings a loaded machine produces now and then, so tests see them.

Each helper makes one interleaving certain, without sleeping: one thread waits on an event
another thread sets at the point the race is about.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from pynetdicom.transport import AssociationSocket

#: How long a delayed step waits for the event it waits on before going on regardless.
_PATIENCE_S = 5.0


class _ReadyAfterClose(threading.Event):
    """A requestor socket's "connect attempted" event; once armed, ``wait`` waits for the close.

    Armed by ``connect`` before it sets the event, so a thread already waiting sees it.
    """

    def __init__(self) -> None:
        super().__init__()
        self.armed = False
        self.closed = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        ready = super().wait(timeout)
        if self.armed:
            return self.closed.wait(_PATIENCE_S)
        return ready


def requestor_looks_after_the_answer(monkeypatch: pytest.MonkeyPatch, port: int) -> None:
    """Hold back pynetdicom's requestor thread until its DUL has read the answer and closed.

    pynetdicom's requestor thread waits for the DUL thread to connect, then checks that the
    socket is connected. Here, for associations requested to ``port``, it waits until the DUL
    thread has also closed the connection - as after the peer's A-ASSOCIATE-RJ - so the check
    finds it closed: what happens once in a thousand runs on a loaded machine.
    """
    init = AssociationSocket.__init__
    connect = AssociationSocket.connect
    close = AssociationSocket.close

    def init_with_late_ready(self: AssociationSocket, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        if not self._ready.is_set():  # a requestor's socket, not yet connected
            self._ready = _ReadyAfterClose()

    def connect_armed(self: AssociationSocket, primitive: Any) -> None:
        ready = self._ready
        if isinstance(ready, _ReadyAfterClose) and primitive.address_info.port == port:
            ready.armed = True
        connect(self, primitive)

    def close_and_say_so(self: AssociationSocket) -> None:
        close(self)
        ready = self._ready
        if isinstance(ready, _ReadyAfterClose):
            ready.closed.set()

    monkeypatch.setattr(AssociationSocket, "__init__", init_with_late_ready)
    monkeypatch.setattr(AssociationSocket, "connect", connect_armed)
    monkeypatch.setattr(AssociationSocket, "close", close_and_say_so)
