"""A storage SCP for C-MOVE tests: the Move Destination, on 127.0.0.1 and an ephemeral port."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pynetdicom import AE, evt
from pynetdicom.presentation import StoragePresentationContexts
from pynetdicom.transport import ThreadedAssociationServer

VARIAN_PRIVATE = ("1.2.246.352.70.1.10", "1.2.246.352.70.1.70")


@dataclass
class Received:
    """One object the receiver stored, as it arrived."""

    dataset: Dataset
    raw: bytes
    originator_ae: str
    originator_id: int | None
    calling_ae: str
    #: The transfer syntax of the presentation context it arrived on.
    transfer_syntax: str = ""


#: How often the receiver's accept loop looks for shutdown().
POLL_S = 0.02


@dataclass
class Receiver:
    """Accepts every storage SOP class except ``refuse``; keeps what it receives."""

    ae_title: str = "DEST"
    refuse: Iterable[str] = ()
    #: The transfer syntaxes accepted, in order of preference; None: pynetdicom's defaults
    #: (Implicit VR Little Endian first), as a user's storage SCP has them.
    transfer_syntaxes: Sequence[str] | None = None
    #: 0 asks the kernel for a port; a test entity's reserved port is taken over.
    bind_port: int = 0
    #: Called in the C-STORE handler with the number of objects received so far.
    on_store: Callable[[int], None] | None = None
    received: list[Received] = field(default_factory=list)
    _server: ThreadedAssociationServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Receiver:
        ae = AE(ae_title=self.ae_title)
        refused = set(self.refuse)
        for context in StoragePresentationContexts:
            if context.abstract_syntax not in refused:
                self._support(ae, context.abstract_syntax)
        for sop_class in VARIAN_PRIVATE:
            self._support(ae, sop_class)
        server = ae.make_server(
            ("127.0.0.1", self.bind_port),
            evt_handlers=[(evt.EVT_C_STORE, self._store)],
            server_class=ThreadedAssociationServer,
        )
        # As ae.start_server(block=False) does, but with a short poll: shutdown() waits for the
        # next poll, and pynetdicom's half second made every test with a receiver 0.5 s longer.
        threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": POLL_S}, daemon=True
        ).start()
        ae._servers.append(server)  # as start_server does: shutdown() removes it again
        self._server = server
        return self

    def _support(self, ae: AE, sop_class: str) -> None:
        if self.transfer_syntaxes is None:
            ae.add_supported_context(sop_class)
        else:
            ae.add_supported_context(sop_class, list(self.transfer_syntaxes))

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    def entity(self, **extra: Any) -> dict[str, Any]:
        """The ``[[trusted]]`` table a daemon needs to move objects here."""
        return {"ae_title": self.ae_title, "ip": "127.0.0.1", "port": self.port, **extra}

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()  # also closes it and forgets it in its AE
            self._server = None

    def uids(self) -> list[str]:
        with self._lock:
            return [str(r.dataset.SOPInstanceUID) for r in self.received]

    def _store(self, event: evt.Event) -> int:
        raw = event.encoded_dataset()
        request = event.request
        with self._lock:
            self.received.append(
                Received(
                    dataset=dcmread(DicomBytesIO(raw)),
                    raw=raw,
                    originator_ae=str(request.MoveOriginatorApplicationEntityTitle or ""),
                    originator_id=request.MoveOriginatorMessageID,
                    calling_ae=event.assoc.requestor.ae_title,
                    transfer_syntax=str(event.context.transfer_syntax),
                )
            )
            count = len(self.received)
        if self.on_store is not None:
            self.on_store(count)
        return 0x0000


def receiving(ae_title: str, port: int) -> Iterator[Receiver]:
    """A fixture's body: a receiver as ``ae_title`` on ``port`` (a reserved one), then stopped.

    Use as ``yield from receiving(entity.ae_title, entity.port)``.
    """
    started = Receiver(ae_title=ae_title, bind_port=port).start()
    try:
        yield started
    finally:
        started.stop()
