"""Ending an association the daemon serves as an injected fault: the primitives.

:mod:`simdaemon.injection` decides when a fault fires; this module carries out the ending,
on the association's DUL thread - which runs pynetdicom's state machine, under the lock a
response sent by the association thread itself also takes - so a fault never races the
state machine or the responses already queued for the peer:

* :func:`fail_association` queues an :class:`EndAsFault` behind whatever the association
  thread already queued (a C-FIND's pending responses, a C-MOVE's progress);
* :func:`fail_on_pdu` sets a :class:`PduTrap` that springs on the peer's n-th P-DATA-TF PDU,
  before the state machine acts on it (a C-STORE that never gets its response).

Both need an association served by :mod:`simdaemon.net.acceptor`, whose DUL owns a
:class:`Saboteur` and hands it each :class:`EndAsFault` and each received event.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pynetdicom.dul import DULServiceProvider
from pynetdicom.pdu_primitives import A_ABORT, A_P_ABORT

__all__ = ["EndAsFault", "PduTrap", "Saboteur", "fail_association", "fail_on_pdu"]

#: States in which an association can be ended as a fault: negotiating or established.
_ABORTABLE = frozenset(f"Sta{n}" for n in range(3, 13))


class EndAsFault:
    """A primitive of ours: end the association as a fault, after what is queued before it.

    Queued to the DUL like pynetdicom's own primitives; with ``close`` the TCP connection is
    closed without an A-ABORT.
    """

    def __init__(self, close: bool) -> None:
        self.close = close


@dataclass(frozen=True)
class PduTrap:
    """End an association on receipt of the peer's ``count``-th P-DATA-TF PDU.

    With an A-ABORT, or with ``close`` the TCP connection closed without one; ``sprung`` is
    called (on the connection's thread) when it happens.
    """

    count: int
    close: bool
    sprung: Callable[[], None]


class Saboteur:
    """Carries out injected faults on one association, from its DUL thread."""

    def __init__(self, dul: DULServiceProvider, ending: Callable[[], None]) -> None:
        """Serve ``dul``; call ``ending`` just before ending it, before the peer can see it."""
        self._dul = dul
        self._ending = ending
        #: An injected fault ending the association on the peer's n-th P-DATA-TF PDU.
        self.pdu_trap: PduTrap | None = None
        self._pdata_received = 0
        self._ended = False

    def end(self, close: bool) -> None:
        """End the association: an A-ABORT, or the connection closed without one.

        The A-ABORT is the one a daemon application sends (source: service user), sent by
        the state machine's own abort action (AA-1) ahead of anything still queued for the
        peer, which is then dropped; the association thread is told as it would be of a
        peer's abort. Closing the socket is seen by the state machine as the peer going away
        (AA-4). Does nothing unless the association is being negotiated or established.
        """
        dul = self._dul
        if self._ended or dul.state_machine.current_state not in _ABORTABLE:
            return
        self._ended = True
        self._ending()
        if close:
            if dul.socket is not None:
                dul.socket.close()  # queues Evt17, "transport connection closed"
            return
        abort = A_ABORT()
        abort.abort_source = 0x00
        with dul.to_provider_queue.mutex:  # AA-1 takes it from the front
            dul.to_provider_queue.queue.appendleft(abort)
        dul.event_queue.put("Evt15")
        ended = A_P_ABORT()
        ended.provider_reason = 0x00
        dul.to_user_queue.put(ended)

    def springs(self, event: str) -> bool:
        """Whether a received event springs :attr:`pdu_trap`; if so, end the association.

        Only a P-DATA-TF PDU (Evt10) counts; the one that springs the trap is never acted on.
        """
        trap = self.pdu_trap
        if event != "Evt10" or trap is None:
            return False
        dul = self._dul
        if dul.state_machine.current_state not in _ABORTABLE:
            return False  # already ended some other way: nothing left to spring on
        self._pdata_received += 1
        if self._pdata_received < trap.count:
            return False
        self.pdu_trap = None
        with contextlib.suppress(queue.Empty):
            dul._recv_pdu.get(block=False)
        dul.assoc.is_established = False
        trap.sprung()  # first: a peer that sees the abort can already read what caused it
        self.end(trap.close)
        return True


def _saboteur(assoc: Any, caller: str) -> Saboteur:
    saboteur = getattr(assoc.dul, "saboteur", None)
    if not isinstance(saboteur, Saboteur):
        raise TypeError(f"{caller} needs an association served with EventDrivenDUL")
    return saboteur


def fail_association(assoc: Any, close: bool = False) -> None:
    """End an association the daemon serves, as an injected fault; from any thread.

    An A-ABORT - or, with ``close``, the TCP connection closed without one - follows whatever
    was already queued for the peer. The association stops counting as established at once,
    so pynetdicom's service classes and the daemon's move send nothing more.
    """
    _saboteur(assoc, "fail_association")
    assoc.is_established = False
    assoc.dul.send_pdu(EndAsFault(close))


def fail_on_pdu(assoc: Any, trap: PduTrap) -> None:
    """Make the association end as a fault on receipt of a P-DATA-TF PDU (see PduTrap)."""
    _saboteur(assoc, "fail_on_pdu").pdu_trap = trap
