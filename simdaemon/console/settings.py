"""Where the console listens and who may use it: :class:`ConsoleSettings`, no web framework.

Kept apart from the HTTP code so the daemon and the command line can name a console's
settings without importing FastAPI: the framework is loaded only when a console starts.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass

__all__ = ["ConsoleSettings", "is_loopback"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address of this machine only (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class ConsoleSettings:
    """The HTTP console: address, port (0 = ephemeral) and the token requests must carry.

    On a loopback address the token is optional; on any other address it is required, and
    :meth:`resolved` makes one up when none was given (the command line prints it).
    """

    host: str = "127.0.0.1"
    port: int = 0
    token: str | None = None

    def __post_init__(self) -> None:
        try:
            ipaddress.ip_address(self.host.strip("[]"))
        except ValueError:
            raise ValueError(
                f"console host {self.host!r} is not an IP address; expected one such as "
                "127.0.0.1 (loopback, the default) or 0.0.0.0 (all interfaces, token required)"
            ) from None
        if not 0 <= self.port <= 65535:
            raise ValueError(f"console port {self.port} is not allowed: expected 0 to 65535")
        if self.token is not None and len(self.token) < 16:
            raise ValueError("a console token must be at least 16 characters long")

    def resolved(self) -> ConsoleSettings:
        """These settings, with a generated token when the address needs one and has none."""
        if self.token is None and not is_loopback(self.host):
            return ConsoleSettings(self.host, self.port, secrets.token_urlsafe(24))
        return self
