"""Association acceptance: who may talk to the daemon, and about what.

The rules of SPEC section 3 as a pure function, :func:`decide`, so they can be tested
without sockets and read in one place. The order of the checks is the real daemon's:
called AE title, then calling AE title, then the peer's address, then the association limit.
Every decision carries one line of explanation that says what to change.

The presentation contexts the daemon offers are here too: they are the other half of what
an association may do.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

from simdaemon.config import TrustedEntity, normalize_ae_title

__all__ = [
    "ABSTRACT_SYNTAXES",
    "TRANSFER_SYNTAXES",
    "AssociationRequest",
    "Decision",
    "Reason",
    "Rejection",
    "Result",
    "Source",
    "canonical_address",
    "decide",
    "request_fits_context",
]

TRANSFER_SYNTAXES: tuple[str, ...] = (ImplicitVRLittleEndian, ExplicitVRLittleEndian)

VERIFICATION = "1.2.840.10008.1.1"
QUERY_RETRIEVE: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.2.1.1": "Patient Root Query/Retrieve - FIND",
    "1.2.840.10008.5.1.4.1.2.1.2": "Patient Root Query/Retrieve - MOVE",
    "1.2.840.10008.5.1.4.1.2.2.1": "Study Root Query/Retrieve - FIND",
    "1.2.840.10008.5.1.4.1.2.2.2": "Study Root Query/Retrieve - MOVE",
}
#: The storage classes of the ARIA conformance statement, and Varian's private ones.
STORAGE: dict[str, str] = {
    "1.2.840.10008.5.1.4.1.1.1": "Computed Radiography Image Storage",
    "1.2.840.10008.5.1.4.1.1.2": "CT Image Storage",
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.6.1": "Ultrasound Image Storage",
    "1.2.840.10008.5.1.4.1.1.7": "Secondary Capture Image Storage",
    "1.2.840.10008.5.1.4.1.1.12.1": "X-Ray Angiographic Image Storage",
    "1.2.840.10008.5.1.4.1.1.128": "Positron Emission Tomography Image Storage",
    "1.2.840.10008.5.1.4.1.1.481.1": "RT Image Storage",
    "1.2.840.10008.5.1.4.1.1.481.2": "RT Dose Storage",
    "1.2.840.10008.5.1.4.1.1.481.3": "RT Structure Set Storage",
    "1.2.840.10008.5.1.4.1.1.481.5": "RT Plan Storage",
    "1.2.840.10008.5.1.4.1.1.481.8": "RT Ion Plan Storage",
    "1.2.840.10008.5.1.4.1.1.481.4": "RT Beams Treatment Record Storage",
    "1.2.840.10008.5.1.4.1.1.481.9": "RT Ion Beams Treatment Record Storage",
    "1.2.840.10008.5.1.4.1.1.66.1": "Spatial Registration Storage",
    "1.2.840.10008.5.1.4.1.1.66.3": "Deformable Spatial Registration Storage",
    "1.2.246.352.70.1.10": "Varian Treatment Record (private)",
    "1.2.246.352.70.1.70": "Varian Halcyon Plan (private)",
}
#: Every abstract syntax the daemon accepts. C-GET is absent on purpose: the real daemon
#: has none, so its contexts are refused as "abstract syntax not supported".
ABSTRACT_SYNTAXES: tuple[str, ...] = (VERIFICATION, *QUERY_RETRIEVE, *STORAGE)


#: The abstract syntaxes each DIMSE request may be sent on (PS3.4: a service's SOP classes).
_CONTEXTS_OF: dict[str, frozenset[str]] = {
    "C-ECHO": frozenset({VERIFICATION}),
    "C-FIND": frozenset(uid for uid, name in QUERY_RETRIEVE.items() if name.endswith("FIND")),
    "C-MOVE": frozenset(uid for uid, name in QUERY_RETRIEVE.items() if name.endswith("MOVE")),
    "C-STORE": frozenset(STORAGE),
}


def request_fits_context(command: str, abstract_syntax: str) -> bool:
    """Whether a DIMSE request (``"C-FIND"``...) belongs on a context of this abstract syntax.

    A C-MOVE sent on a FIND context, or a C-STORE on the Verification context, does not: the
    peer negotiated one service and asks for another. Commands the daemon does not serve
    (C-GET, N-*) fit no context.
    """
    return abstract_syntax in _CONTEXTS_OF.get(command, frozenset())


def canonical_address(address: str) -> str:
    """A peer address as the trust rules compare it: IPv4-mapped IPv6 as plain IPv4.

    A daemon listening on ``::`` sees an IPv4 caller as ``::ffff:127.0.0.1``; an entity
    trusted from ``127.0.0.1`` is the same peer. Anything that is not an IPv4-mapped
    address (or not an address) is returned unchanged.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    return address


class Result(enum.IntEnum):
    """A-ASSOCIATE-RJ result (PS3.8 Table 9-21)."""

    REJECTED_PERMANENT = 1
    REJECTED_TRANSIENT = 2


class Source(enum.IntEnum):
    """A-ASSOCIATE-RJ source."""

    SERVICE_USER = 1
    SERVICE_PROVIDER_ACSE = 2
    SERVICE_PROVIDER_PRESENTATION = 3


class Reason(enum.IntEnum):
    """A-ASSOCIATE-RJ reason/diagnostic, for the sources the daemon uses."""

    NO_REASON = 1
    CALLING_AE_NOT_RECOGNIZED = 3
    CALLED_AE_NOT_RECOGNIZED = 7
    LOCAL_LIMIT_EXCEEDED = 2  # with source SERVICE_PROVIDER_PRESENTATION


@dataclass(frozen=True)
class AssociationRequest:
    """What the daemon knows about a caller when it decides: titles and peer address."""

    calling_ae: str
    called_ae: str
    peer_address: str
    peer_port: int


@dataclass(frozen=True)
class Rejection:
    """The three fields of an A-ASSOCIATE-RJ PDU."""

    result: Result
    source: Source
    reason: Reason


@dataclass(frozen=True)
class Decision:
    """The outcome of :func:`decide`: accept (``rejection`` is None) or reject, and why."""

    rule: str
    explanation: str
    rejection: Rejection | None = None
    entity: TrustedEntity | None = None

    @property
    def accepted(self) -> bool:
        """Whether the association is accepted."""
        return self.rejection is None


def decide(
    request: AssociationRequest,
    *,
    daemon_ae: str,
    trusted: Iterable[TrustedEntity],
    active: int,
    limit: int,
    command_line: bool = False,
) -> Decision:
    """Decide whether to accept an association request (SPEC section 3).

    ``active`` is how many associations the daemon is already serving, not counting this one.
    With ``command_line`` (a daemon started by ``simdaemon serve``) a refusal's hint names the
    command-line flag beside the configuration key.
    """
    calling = normalize_ae_title(request.calling_ae)
    called = normalize_ae_title(request.called_ae)
    own = normalize_ae_title(daemon_ae)
    peer = canonical_address(request.peer_address)

    if called != own:
        return Decision(
            rule="called-ae",
            explanation=(
                f"called AE '{called}' is not this daemon's AE title '{own}'; "
                f"call '{own}', or set [daemon] ae_title = '{called}'"
                + (f" (--ae-title {called})" if command_line else "")
            ),
            rejection=Rejection(
                Result.REJECTED_PERMANENT, Source.SERVICE_USER, Reason.CALLED_AE_NOT_RECOGNIZED
            ),
        )

    entity = next((e for e in trusted if e.ae_title == calling), None)
    if entity is None:
        return Decision(
            rule="calling-ae",
            explanation=(
                f"calling AE '{calling}' is not a trusted entity; add it under [[trusted]] "
                f"with ae_title = '{calling}', ip = '{peer}' and the port of its storage SCP"
                + (f" (--trust {calling}@{peer}:PORT)" if command_line else "")
            ),
            rejection=Rejection(
                Result.REJECTED_PERMANENT, Source.SERVICE_USER, Reason.CALLING_AE_NOT_RECOGNIZED
            ),
        )

    if not (entity.allows(peer) or entity.allows(request.peer_address)):
        return Decision(
            rule="peer-address",
            explanation=(
                f"AE '{calling}' is trusted only from {entity.ip}; this call came from {peer}; "
                f"call from {entity.ip}, or set ip = '{peer}' in its [[trusted]] entry"
                + (f" (--trust {calling}@{peer}:{entity.port})" if command_line else "")
            ),
            rejection=Rejection(
                Result.REJECTED_PERMANENT, Source.SERVICE_USER, Reason.CALLING_AE_NOT_RECOGNIZED
            ),
            entity=entity,
        )

    if active >= limit:
        return Decision(
            rule="limit",
            explanation=(
                f"already serving {active} associations, the limit; '{calling}' may retry "
                f"later, or raise [daemon] max_associations above {limit}"
            ),
            rejection=Rejection(
                Result.REJECTED_TRANSIENT,
                Source.SERVICE_PROVIDER_PRESENTATION,
                Reason.LOCAL_LIMIT_EXCEEDED,
            ),
            entity=entity,
        )

    return Decision(
        rule="trusted",
        explanation=f"accepted '{calling}' from {peer}:{request.peer_port}",
        entity=entity,
    )
