"""Interop: DCMTK's echoscu against the daemon, for every row of the association table."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest

from simdaemon import Daemon
from tests.conftest import MakeDaemon
from tests.scu import associate

pytestmark = pytest.mark.dcmtk


def echoscu(
    dcmtk: Callable[[str], str], daemon: Daemon, calling: str, called: str | None = None
) -> subprocess.CompletedProcess[str]:
    command = [dcmtk("echoscu"), "-aet", calling, "-aec", called or daemon.ae_title]
    return subprocess.run(
        [*command, daemon.host, str(daemon.port)], capture_output=True, text=True, timeout=30
    )


def test_echoscu_from_a_trusted_entity_succeeds(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon()
    done = echoscu(dcmtk, daemon, "SIMCLIENT")
    assert done.returncode == 0, done.stderr
    assert [e.operation for e in daemon.audit] == ["associate", "echo"]


@pytest.mark.parametrize(
    ("calling", "called", "result", "reason"),
    [
        ("STRANGER", None, "rejected permanent, source: service user", "calling ae title not"),
        ("SIMCLIENT", "ARIA", "rejected permanent, source: service user", "called ae title not"),
    ],
)
def test_echoscu_sees_the_exact_rejection(
    dcmtk: Callable[[str], str],
    make_daemon: MakeDaemon,
    calling: str,
    called: str | None,
    result: str,
    reason: str,
) -> None:
    done = echoscu(dcmtk, make_daemon(), calling, called)
    assert done.returncode != 0
    said = done.stderr.lower()  # DCMTK capitalises differently between releases
    assert f"result: {result}" in said
    assert f"reason: {reason} recognized" in said


def test_echoscu_from_the_wrong_address_is_refused(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon(trusted=[{"ae_title": "SIMCLIENT", "ip": "10.130.10.133", "port": 104}])
    done = echoscu(dcmtk, daemon, "SIMCLIENT")
    assert "reason: calling ae title not recognized" in done.stderr.lower()
    assert daemon.audit.events("associate")[0].rule == "peer-address"


def test_echoscu_over_the_limit_is_refused_transiently(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon
) -> None:
    daemon = make_daemon(max_associations=1)
    held = associate(daemon)
    assert held.is_established
    done = echoscu(dcmtk, daemon, "SIMCLIENT")
    held.release()
    said = done.stderr.lower()
    assert "result: rejected transient, source: service provider (presentation" in said
    assert "reason: local limit exceeded" in said
