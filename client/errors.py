"""The client's exceptions: each says what the daemon answered, in words."""

from __future__ import annotations

__all__ = ["AssociationRejected", "ClientError", "ConnectionTimeout", "DaemonStatusError"]

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
