"""The client's exceptions: each says what the daemon answered, in words."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AssociationAborted",
    "AssociationRejected",
    "ClientError",
    "ConnectionTimeout",
    "DaemonStatusError",
]

_RESULTS = {1: "rejected-permanent", 2: "rejected-transient"}
_SOURCES = {
    1: "service-user",
    2: "service-provider (ACSE)",
    3: "service-provider (presentation)",
}
_REASONS = {
    (1, 1): "no reason given",
    (1, 2): "application context name not supported",
    (1, 3): "calling AE title not recognized",
    (1, 7): "called AE title not recognized",
    (2, 1): "no reason given",
    (2, 2): "protocol version not supported",
    (3, 1): "temporary congestion",
    (3, 2): "local limit exceeded",
}


class ClientError(Exception):
    """Base class of everything the client raises."""


class AssociationRejected(ClientError):
    """The daemon answered A-ASSOCIATE-RJ; ``result``, ``source`` and ``reason`` as sent."""

    def __init__(self, result: int, source: int, reason: int) -> None:
        self.result = result
        self.source = source
        self.reason = reason
        super().__init__(
            f"association rejected: {_RESULTS.get(result, f'result {result}')}, "
            f"source {_SOURCES.get(source, str(source))}, "
            f"reason: {_REASONS.get((source, reason), f'diagnostic {reason}')}"
        )

    @property
    def transient(self) -> bool:
        """Whether trying again later may succeed (the daemon was busy)."""
        return self.result == 2


class DaemonStatusError(ClientError):
    """The daemon answered a request with a failure status."""

    def __init__(self, operation: str, status: int, comment: str = "") -> None:
        self.operation = operation
        self.status = status
        self.comment = comment
        said = f": {comment}" if comment else ""
        super().__init__(f"{operation} failed with status 0x{status:04X}{said}")


class ConnectionTimeout(ClientError):
    """The daemon did not answer in time, or could not be reached at all."""


class AssociationAborted(ClientError):
    """The daemon ended the association (A-ABORT, or the connection closed) before answering.

    ``partial`` is what had arrived by then, so a caller can tell how far it got: the
    identifiers of a C-FIND's pending responses, the answers of the C-STOREs before the one
    left unanswered, or a C-MOVE's last pending counts as a :class:`~client.MoveResult`.
    None of it is complete; the operation failed.
    """

    def __init__(self, operation: str, partial: tuple[Any, ...] = ()) -> None:
        self.operation = operation
        self.partial = partial
        when = "before answering" if not partial else f"after {len(partial)} partial result(s)"
        super().__init__(
            f"the daemon ended the association during the {operation} {when} "
            "(A-ABORT or connection closed); the operation did not complete"
        )
