"""What makes a test's fresh daemon cheap, and what it must not change for other daemons."""

from __future__ import annotations

from pathlib import Path

from pynetdicom import AE

from simdaemon import Daemon
from simdaemon.config import from_mapping
from simdaemon.pytest_plugin import TestDaemon
from simdaemon.server import ABSTRACT_SYNTAXES, TRANSFER_SYNTAXES


def test_the_plugins_archives_skip_fsync_and_a_daemons_keep_it(
    simdaemon: TestDaemon, tmp_path: Path
) -> None:
    """Per-test archives trade power-cut safety for speed (synchronous = OFF); `serve` and
    every other Daemon keep synchronous = NORMAL."""
    with simdaemon.archive.reading() as db:
        assert db.execute("PRAGMA synchronous").fetchone()[0] == 0  # OFF
    other = Daemon(from_mapping({"daemon": {"port": 0, "archive": str(tmp_path / "a")}}, tmp_path))
    try:
        with other.archive.reading() as db:
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    finally:
        other.stop()


def test_each_daemon_has_its_own_copies_of_the_supported_contexts(tmp_path: Path) -> None:
    """Built once per process, copied per AE: one daemon's change stays its own."""
    config = from_mapping({"daemon": {"port": 0, "archive": str(tmp_path / "a")}}, tmp_path)
    first, second = Daemon(config), Daemon(config)
    reference = AE()
    for syntax in ABSTRACT_SYNTAXES:
        reference.add_supported_context(syntax, list(TRANSFER_SYNTAXES))
    assert [str(cx) for cx in first._ae.supported_contexts] == [
        str(cx) for cx in reference.supported_contexts
    ]
    uid = ABSTRACT_SYNTAXES[0]
    first._ae.remove_supported_context(uid, TRANSFER_SYNTAXES[0])
    assert [str(cx) for cx in second._ae.supported_contexts] == [
        str(cx) for cx in reference.supported_contexts
    ]
