"""The association rules (see simdaemon.findings): what a client did with a whole association.

The daemon tells an :class:`AssociationWatch` when an association is accepted, which
presentation context each request used, when a request's last response is out and how the
association ended; the watch runs the association rules at those points and reports their
findings. These are recorded only: the association cannot be refused once it is accepted.
"""

from __future__ import annotations

import threading
import time
import weakref
from dataclasses import dataclass, field

from pydicom.uid import UID
from pynetdicom import evt
from pynetdicom.association import Association

from simdaemon.findings import (
    AssociationEnd,
    ChurnWindow,
    ContextProposal,
    Finding,
    abort_instead_of_release,
    association_per_request_churn,
    overlapping_dimse,
    refused_contexts,
    unused_presentation_contexts,
)
from simdaemon.services.context import ServiceContext
from simdaemon.services.noticing import report_all
from simdaemon.services.peer import Peer, describe_peer

__all__ = ["AssociationWatch"]

#: A-ASSOCIATE-AC presentation context results (PS3.8 9.3.3.2).
_ABSTRACT_SYNTAX_NOT_SUPPORTED = 0x03


@dataclass
class _Usage:
    requests: int = 0
    used: set[str] = field(default_factory=set)


def _name(uid: object) -> str:
    text = str(uid)
    name = UID(text).name
    return name if name and name != text else text


class AssociationWatch:
    """Runs the association rules on the daemon's associations; one per running daemon."""

    def __init__(self, context: ServiceContext, churn_per_second: int) -> None:
        self.context = context
        self.churn = ChurnWindow(churn_per_second)
        self._lock = threading.Lock()
        self._usage: weakref.WeakKeyDictionary[Association, _Usage] = weakref.WeakKeyDictionary()

    def forget(self) -> None:
        """Forget the associations counted for churn (a reset daemon looks freshly started)."""
        with self._lock:
            self.churn = ChurnWindow(self.churn.limit)

    @property
    def enabled(self) -> bool:
        """Whether the rules run (``[findings] enabled``)."""
        return self.context.findings.enabled

    def _report(self, peer: Peer, *found: Finding | None, message_id: int | None = None) -> None:
        report_all(self.context, [f for f in found if f is not None], peer, message_id)

    def opened(self, peer: Peer) -> None:
        """An association accepted: count it for association-per-request-churn."""
        if not self.enabled:
            return
        limit = self.churn.limit
        with self._lock:
            in_window = self.churn.opened(peer.calling_ae, time.monotonic())
        if in_window == limit + 1:  # once per burst, when it crosses the limit
            self._report(peer, association_per_request_churn(peer.calling_ae, in_window, limit))

    def accepted(self, event: evt.Event) -> None:
        """``EVT_ACCEPTED``: report each presentation context the daemon refused."""
        if not self.enabled:
            return
        assoc: Association = event.assoc
        proposed = {cx.context_id: cx for cx in assoc.requestor.requested_contexts}
        accepted = {str(cx.abstract_syntax) for cx in assoc.accepted_contexts}
        refusals: list[ContextProposal] = []
        for refused in assoc.rejected_contexts:
            asked = proposed.get(refused.context_id, refused)
            if str(asked.abstract_syntax) in accepted:
                continue  # another context of the same class was accepted
            why = (
                "abstract-syntax"
                if refused.result == _ABSTRACT_SYNTAX_NOT_SUPPORTED
                else "transfer-syntax"
            )
            refusals.append(
                ContextProposal(
                    str(asked.abstract_syntax),
                    _name(asked.abstract_syntax),
                    [_name(ts) for ts in asked.transfer_syntax],
                    why,
                )
            )
        if refusals:
            self._report(describe_peer(assoc), *refused_contexts(refusals))

    def used(self, assoc: Association, abstract_syntax: object) -> None:
        """A request arrived on a context of ``abstract_syntax``."""
        if not self.enabled:
            return
        with self._lock:
            usage = self._usage.setdefault(assoc, _Usage())
            usage.requests += 1
            usage.used.add(str(abstract_syntax))

    def answered(self, assoc: Association) -> None:
        """A request's last response is out: was another request waiting meanwhile?

        pynetdicom serves one request at a time and queues what arrives meanwhile; a request
        queued when a C-FIND or C-MOVE finishes streaming was sent while it was pending.
        """
        if not self.enabled:
            return
        waiting = assoc.dimse.msg_queue.qsize()
        if not waiting:
            return
        queued = list(getattr(assoc.dimse.msg_queue, "queue", []))
        message_id = getattr(queued[0][1], "MessageID", None) if queued else None
        self._report(describe_peer(assoc), overlapping_dimse(waiting), message_id=message_id)

    def ended(self, event: evt.Event) -> None:
        """``EVT_RELEASED`` / ``EVT_ABORTED``: how the association ended and what it used."""
        if not self.enabled:
            return
        assoc: Association = event.assoc
        with self._lock:
            usage = self._usage.pop(assoc, _Usage())
        end = AssociationEnd(
            aborted_by_peer=bool(getattr(assoc, "simdaemon_peer_aborted", False)),
            requests=usage.requests,
            accepted_contexts=sorted({_name(cx.abstract_syntax) for cx in assoc.accepted_contexts}),
            used_contexts=sorted({_name(uid) for uid in usage.used}),
        )
        self._report(
            describe_peer(assoc), abort_instead_of_release(end), unused_presentation_contexts(end)
        )
