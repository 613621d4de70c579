"""DaemonClient: talk to an ARIA DB Daemon (or simdaemon) as a trusted entity."""

from __future__ import annotations

from dataclasses import dataclass

from pynetdicom import AE
from pynetdicom.association import Association

from client.errors import (
    AssociationRejected,
    ClientError,
    ConnectionTimeout,
    DaemonStatusError,
)

__all__ = ["DaemonClient", "Entity"]

VERIFICATION = "1.2.840.10008.1.1"


@dataclass(frozen=True)
class Entity:
    """A DICOM application entity: AE title, host and port."""

    ae_title: str
    host: str
    port: int


class DaemonClient:
    """Operations against the daemon, from ``local`` (a trusted entity of the daemon)."""

    def __init__(
        self,
        local: Entity,
        daemon: Entity,
        *,
        connect_timeout: float = 3.0,
        idle_timeout: float = 60.0,
    ) -> None:
        self.local = local
        self.daemon = daemon
        self.connect_timeout = connect_timeout
        self.idle_timeout = idle_timeout

    def _associate(self, contexts: list[str]) -> Association:
        ae = AE(ae_title=self.local.ae_title)
        ae.connection_timeout = self.connect_timeout
        ae.acse_timeout = self.connect_timeout
        ae.network_timeout = self.idle_timeout
        ae.dimse_timeout = self.idle_timeout
        for context in contexts:
            ae.add_requested_context(context)
        assoc = ae.associate(self.daemon.host, self.daemon.port, ae_title=self.daemon.ae_title)
        if assoc.is_established:
            return assoc
        if assoc.is_rejected and assoc.acceptor.primitive is not None:
            answer = assoc.acceptor.primitive
            raise AssociationRejected(
                answer.result or 0, answer.result_source or 0, answer.diagnostic or 0
            )
        raise ConnectionTimeout(
            f"no association with {self.daemon.ae_title} at {self.daemon.host}:{self.daemon.port}"
            f" within {self.connect_timeout} s (daemon down, wrong address, or it aborted)"
        )

    def echo(self) -> None:
        """Send a C-ECHO; raise unless the daemon answers success."""
        assoc = self._associate([VERIFICATION])
        try:
            status = assoc.send_c_echo()
        finally:
            if assoc.is_established:
                assoc.release()
        if "Status" not in status:
            raise ConnectionTimeout("the daemon did not answer the C-ECHO")
        if status.Status != 0x0000:
            comment = str(status.get("ErrorComment", ""))
            raise DaemonStatusError("C-ECHO", int(status.Status), comment)

    def ping(self) -> bool:
        """Return True only when a C-ECHO response with success arrives."""
        try:
            self.echo()
        except ClientError:
            return False
        return True
