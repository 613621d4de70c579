"""Who is on the other end of an association, as the audit trail and the logs name it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

from pynetdicom.association import Association

from simdaemon.access import canonical_address

__all__ = ["AuditParties", "Peer", "describe_peer"]


class AuditParties(TypedDict):
    """The fields of an audit event that say who it is about."""

    calling_ae: str
    called_ae: str
    peer: str


@dataclass(frozen=True)
class Peer:
    """The calling and called AE titles and the peer's ``ip:port``."""

    calling_ae: str
    called_ae: str
    ip: str
    port: int

    @property
    def address(self) -> str:
        """The peer as ``ip:port``."""
        return f"{self.ip}:{self.port}"

    def audit_fields(self) -> AuditParties:
        """Who an audit event is about, as :meth:`AuditTrail.record` takes it."""
        return {"calling_ae": self.calling_ae, "called_ae": self.called_ae, "peer": self.address}


def describe_peer(assoc: Association) -> Peer:
    """Return the peer of an association the daemon is serving (the acceptor side).

    The address is the one trust is decided on: an IPv4 caller of a dual-stack daemon is
    ``127.0.0.1``, not ``::ffff:127.0.0.1``, in the audit trail and the logs too.
    """
    request = assoc.requestor.primitive
    if request is None:  # only before the A-ASSOCIATE-RQ has arrived
        calling, called = assoc.requestor.ae_title, assoc.acceptor.ae_title
    else:
        calling, called = request.calling_ae_title, request.called_ae_title
    return Peer(
        calling_ae=calling,
        called_ae=called,
        ip=canonical_address(assoc.requestor.address),
        port=assoc.requestor.port,
    )
