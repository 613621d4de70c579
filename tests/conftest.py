"""Fixtures shared by the network tests: daemons on ephemeral ports, DCMTK tools."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dbdaemon_client import DaemonClient, Entity
from simdaemon import Daemon
from simdaemon.dcmtk import find_dcmtk
from simdaemon.pytest_plugin import TestDaemon
from tests.receiver import Receiver, receiving

MakeDaemon = Callable[..., Daemon]

#: The trusted entity most tests call as: this machine's loopback.
CLIENT = {"ae_title": "SIMCLIENT", "ip": "127.0.0.1", "port": 51403}


@pytest.fixture
def make_daemon(tmp_path: Path, simdaemon_factory: Callable[..., Daemon]) -> MakeDaemon:
    """The plugin's ``simdaemon_factory`` with this suite's defaults.

    ``[daemon]`` fields as keywords, other tables as dicts; ``trusted`` defaults to SIMCLIENT
    from 127.0.0.1. Every daemon of a test shares one archive in ``tmp_path`` (so a test can
    seed it under one configuration and query it under another) and relative folders such as
    ``failed`` and ``iods`` resolve there. The factory stops the daemons at teardown, and an
    exception on any of their threads fails the test.
    """

    def make(**overrides: Any) -> Daemon:
        overrides.setdefault("trusted", [CLIENT])
        return simdaemon_factory(folder=tmp_path, **overrides)

    return make


@pytest.fixture
def daemon(make_daemon: MakeDaemon) -> Daemon:
    """A daemon with the default configuration, trusting SIMCLIENT from 127.0.0.1."""
    return make_daemon()


@pytest.fixture(scope="session")
def dcmtk() -> Callable[[str], str]:
    """Return a function giving the path of a DCMTK tool; missing tools fail in CI, else skip."""

    def tool(name: str) -> str:
        path = find_dcmtk(name)
        if path is None:
            message = f"DCMTK's {name} is not installed (apt-get install -y dcmtk)"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        return path

    return tool


def has_second_loopback() -> bool:
    """Whether 127.0.0.2 can be bound (Linux routes all of 127.0.0.0/8 to loopback)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.2", 0))
        except OSError:
            return False
    return True


def client_for(daemon: TestDaemon, calling: str | None = None, **timeouts: float) -> DaemonClient:
    """A client calling ``daemon`` as its test entity (or as ``calling``), as ``daemon_client``."""
    entity = daemon.test_entity
    return DaemonClient(
        Entity(calling or entity.ae_title, entity.host, entity.port),
        Entity(daemon.ae_title, daemon.host, daemon.port),
        **timeouts,
    )


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    """Storage receivers a test starts and appends here; all stopped at teardown."""
    started: list[Receiver] = []
    yield started
    for receiver in started:
        receiver.stop()


@pytest.fixture
def receiver(simdaemon: TestDaemon) -> Iterator[Receiver]:
    """The test's own storage receiver, on the port its entity reserved: moves to it arrive."""
    yield from receiving(simdaemon.test_entity.ae_title, simdaemon.test_entity.port)
