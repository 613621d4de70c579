"""What the console needs from a daemon, as a protocol: the console never imports the server.

:class:`simdaemon.server.Daemon` satisfies it; the server starts the console, so the
console depending on the server module would be an import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from simdaemon.archive import Archive
from simdaemon.audit import AuditTrail
from simdaemon.config import Config, TrustedEntity
from simdaemon.faults import Faults
from simdaemon.investigation import Investigator

if TYPE_CHECKING:  # the import pipeline loads with the first import, not with the console
    from simdaemon.importer import Importer

__all__ = ["Control"]


class Control(Protocol):
    """The daemon as the console drives it: the same calls the Python API offers."""

    config: Config
    audit: AuditTrail
    faults: Faults
    investigator: Investigator

    @property
    def archive(self) -> Archive: ...

    @property
    def importer(self) -> Importer: ...

    @property
    def running(self) -> bool: ...

    @property
    def ae_title(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def trusted(self) -> tuple[TrustedEntity, ...]: ...

    def trust(self, entity: TrustedEntity) -> None: ...

    def untrust(self, ae_title: str) -> None: ...

    def reset(self) -> None: ...

    def restart(self, config: Config) -> None: ...
