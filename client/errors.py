"""The client's exceptions, one type per cause, each saying what happened and what to change.

Everything derives from :class:`ClientError`, so a script that only wants to know "did it
work" catches one type; a script that retries catches :class:`ConnectionFailed` or a
transient :class:`AssociationRejected`. Messages name the host, port and AE titles involved.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AssociationAborted",
    "AssociationRejected",
    "ClientError",
    "ConnectionFailed",
    "ConnectionRefused",
    "ConnectionTimeout",
    "DaemonStatusError",
    "NothingMoved",
    "Unreachable",
    "UnsafeMove",
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


class ConnectionFailed(ClientError):
    """No association could be opened: nothing answered, or not in time."""


class ConnectionRefused(ConnectionFailed):
    """The host answered, but nothing listens on that port (TCP connection refused)."""


class Unreachable(ConnectionFailed):
    """The host cannot be reached at all (no route, network down)."""


class ConnectionTimeout(ConnectionFailed):
    """Nothing answered in time: the TCP connection, the association request or a request."""


class AssociationRejected(ClientError):
    """The server answered A-ASSOCIATE-RJ; ``result``, ``source`` and ``reason`` as sent.

    The message says, in words, what the rejection means and what to change; ``hint`` is
    that advice alone.
    """

    def __init__(
        self, result: int, source: int, reason: int, *, where: str = "", hint: str = ""
    ) -> None:
        self.result = result
        self.source = source
        self.reason = reason
        self.hint = hint
        said = f" by {where}" if where else ""
        advice = f"; {hint}" if hint else ""
        super().__init__(
            f"association rejected{said}: {_RESULTS.get(result, f'result {result}')}, "
            f"source {_SOURCES.get(source, str(source))}, "
            f"reason: {_REASONS.get((source, reason), f'diagnostic {reason}')}{advice}"
        )

    @property
    def transient(self) -> bool:
        """Whether trying again later may succeed (the server was busy)."""
        return self.result == 2


class DaemonStatusError(ClientError):
    """The server answered a request with a failure status (its Error Comment kept)."""

    def __init__(self, operation: str, status: int, comment: str = "") -> None:
        self.operation = operation
        self.status = status
        self.comment = comment
        said = f": {comment}" if comment else ""
        super().__init__(f"{operation} failed with status 0x{status:04X}{said}")


class AssociationAborted(ClientError):
    """The server ended the association (A-ABORT, or the connection closed) before answering.

    ``partial`` is what had arrived by then, so a caller can tell how far it got: the
    identifiers of a C-FIND's pending responses, the answers of the C-STOREs before the one
    left unanswered, or a C-MOVE's last pending counts as a
    :class:`~dbdaemon_client.MoveResult`. None of it is complete; the operation failed.
    """

    def __init__(self, operation: str, partial: tuple[Any, ...] = (), where: str = "") -> None:
        self.operation = operation
        self.partial = partial
        when = "before answering" if not partial else f"after {len(partial)} partial result(s)"
        said = where or "the server"
        super().__init__(
            f"{said} ended the association during the {operation} {when} "
            "(A-ABORT or connection closed); the operation did not complete"
        )


class UnsafeMove(ClientError):
    """A C-MOVE was refused by the client before it was sent: it could move too much.

    A move names what it moves by the unique keys of its level and of the levels above; an
    empty, wildcard or multi-valued unique key matches everything, and on a clinical
    database that is every patient.
    """


class NothingMoved(ClientError):
    """The server answered a C-MOVE of something it had listed with zero sub-operations.

    It found nothing under the keys sent, so the result would silently be empty; most often
    a hierarchical server that needs unique keys the request did not carry.
    """
