"""The daemons the pytest fixtures start, and the helpers they share with factories and tests.

Kept apart from :mod:`simdaemon.pytest_plugin` so that loading the plugin - which pytest does
in every run of a project that installs simdaemon, and in the pytest-xdist controller before
any worker starts - costs nothing: this module (and with it pydicom, pynetdicom and the
daemon) is imported when a test first asks for a daemon. ``TestDaemon`` and the rest are
still importable from the plugin, as before.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import pytest

from simdaemon.config import Config, from_mapping
from simdaemon.console.settings import ConsoleSettings
from simdaemon.importer import Received, received_from
from simdaemon.server import Daemon
from simdaemon.synthetic import SyntheticPatient

__all__ = [
    "TEST_AE_TITLE",
    "TestDaemon",
    "TestEntity",
    "daemon_lifetime",
    "import_all",
    "import_patient",
    "make_test_daemon",
    "reserve",
]

#: The AE title a test calls its daemon as.
TEST_AE_TITLE = "SIMTEST"


class _Where(Protocol):
    """Where the fixtures' daemons listen (``simdaemon.pytest_plugin.Settings``)."""

    @property
    def host(self) -> str: ...


@dataclass
class TestEntity:
    """The entity a test calls the daemon as, with the port reserved for its receiver."""

    __test__ = False  # not a test class, whatever pytest's name matching thinks

    ae_title: str
    host: str
    port: int
    _reservation: socket.socket

    def trusted(self) -> dict[str, Any]:
        """The ``[[trusted]]`` table for this entity."""
        return {"ae_title": self.ae_title, "ip": self.host, "port": self.port}

    def release(self) -> None:
        """Give the reserved port back."""
        self._reservation.close()


class TestDaemon(Daemon):
    """A daemon with the entity its test calls as (``simdaemon.test_entity``)."""

    __test__ = False
    #: A test's archive goes with its temporary folder: no fsync (a commit still survives a
    #: crash of the process; see simdaemon.archive). The durability tests use a Daemon.
    durable_archive = False

    def __init__(
        self, config: Config, test_entity: TestEntity, console: ConsoleSettings | None = None
    ) -> None:
        super().__init__(config, console=console)
        self.test_entity = test_entity


def reserve(host: str, ae_title: str = TEST_AE_TITLE) -> TestEntity:
    """A test entity on ``host`` with a port reserved for its receiver (bound, not listening)."""
    reservation = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    reservation.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reservation.bind((host, 0))
    return TestEntity(ae_title, host, int(reservation.getsockname()[1]), reservation)


def _console(options: dict[str, Any], host: str) -> ConsoleSettings | None:
    """``console=True`` (the HTTP console on ``host`` and an ephemeral port) or settings."""
    console = options.pop("console", None)
    if console is True:
        return ConsoleSettings(host=host)
    return console or None


def _config(options: dict[str, Any], folder: Path, host: str, entity: TestEntity) -> Config:
    data: dict[str, Any] = {"daemon": {"port": 0, "host": host, "archive": str(folder / "archive")}}
    data["trusted"] = options.pop("trusted", [entity.trusted()])
    data["faults"] = options.pop("faults", [])
    for key, value in options.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data["daemon"][key] = value
    return from_mapping(data, folder)


def make_test_daemon(
    options: dict[str, Any], folder: Path, host: str, entity: TestEntity
) -> TestDaemon:
    """A daemon (not started) for ``options`` as the fixtures take them, archived in ``folder``."""
    options = dict(options)
    console = _console(options, host)
    return TestDaemon(_config(options, folder, host, entity), entity, console)


def daemon_lifetime(
    tmp_path_factory: pytest.TempPathFactory, settings: _Where, **options: Any
) -> Iterator[TestDaemon]:
    """Start a daemon with its own archive and test entity, yield it, stop it; for fixtures.

    The body of every daemon fixture that is not function-scoped (the session's shared one,
    and those :func:`simdaemon.factories.daemon` makes); options as for the factory.
    """
    entity = reserve(settings.host)
    daemon = make_test_daemon(options, tmp_path_factory.mktemp("simdaemon"), settings.host, entity)
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()
        entity.release()
    daemon.raise_errors()


def import_patient(daemon: Daemon, patient: SyntheticPatient) -> SyntheticPatient:
    """Store a synthetic patient in ``daemon`` through its import pipeline; return it."""
    import_all(daemon, (received_from(d, TEST_AE_TITLE) for d in patient.datasets()))
    return patient


def import_all(daemon: Daemon, objects: Iterable[Received]) -> None:
    """Run ``objects`` through ``daemon``'s import pipeline; raise if one is not stored."""
    for received in objects:
        result = daemon.importer.run(received)
        if not result.stored:
            raise RuntimeError(f"synthetic object not imported: {result.detail}")
