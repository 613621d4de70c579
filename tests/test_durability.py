"""An acknowledged object survives the daemon process being killed at any instant."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import dcmread

from simdaemon import Daemon
from simdaemon.archive import Archive
from simdaemon.config import load
from tests import objects, scu

pytestmark = pytest.mark.slow  # kills daemon processes mid-ingest

OBJECTS = 500


@dataclass
class _Remote:
    """A daemon listening in another process."""

    host: str
    port: int
    ae_title: str = "VMSDBD"


def _start(config: Path) -> tuple[subprocess.Popen[str], _Remote]:
    process = subprocess.Popen(
        [sys.executable, "-m", "simdaemon", "serve", "--config", str(config),
         "--log-level", "WARNING"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("listening on "), line
    host, port = line.split()[2].rsplit(":", 1)
    return process, _Remote(host, int(port))


@pytest.mark.parametrize("kill_after", [37, 251])
def test_sigkill_mid_stream_loses_no_acknowledged_object(tmp_path: Path, kill_after: int) -> None:
    config = _config_file(tmp_path)
    process, remote = _start(config)
    template = objects.ct(size=32, PatientID="CRASH1")
    batch = [objects.same_patient(template, objects.ct(size=32)) for _ in range(OBJECTS)]
    acknowledged: list[str] = []
    reached = threading.Event()

    def send() -> None:
        assoc = scu.associate(remote, contexts=[(objects.CT, None)])
        try:
            for ds in batch:
                answer = assoc.send_c_store(ds)
                if answer.get("Status") != 0x0000:
                    return  # the daemon died: no answer, so not acknowledged
                acknowledged.append(ds.SOPInstanceUID)
                if len(acknowledged) == kill_after:
                    reached.set()
        finally:
            reached.set()
            assoc.abort()

    sender = threading.Thread(target=send)
    sender.start()
    reached.wait(60)
    os.kill(process.pid, signal.SIGKILL)  # while the sender keeps sending
    process.wait(10)
    sender.join(30)
    assert kill_after <= len(acknowledged) < OBJECTS, "the kill did not land mid-stream"

    with Archive(tmp_path / "archive") as archive:
        found = archive.check()
    assert found.missing_files == (), "a row lost its file"

    daemon = Daemon(load(config)).start()  # checks and repairs at start
    try:
        assert daemon.consistency is not None
        assert daemon.consistency.missing_files == ()
        assert daemon.archive.check().ok
        for uid in acknowledged:
            row = daemon.archive.instance(uid)
            assert row is not None, f"acknowledged {uid} is missing"
            stored = dcmread(row.path)
            assert stored.SOPInstanceUID == uid
            assert len(stored.PixelData) == 32 * 32 * 2
        assert daemon.archive.count() >= len(acknowledged)
    finally:
        daemon.stop()


def test_check_and_repair_report_and_fix_inconsistencies(tmp_path: Path) -> None:
    daemon = Daemon(load(_config_file(tmp_path))).start()
    ds = objects.ct()
    scu.store(daemon, [ds])
    daemon.stop()
    archive = Archive(tmp_path / "archive")
    row = archive.instance(ds.SOPInstanceUID)
    assert row is not None
    stray = archive.files / "1.2.3" / "4.5" / "6.7.dcm"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"orphan")
    partial = archive.incoming / "deadbeef.part"
    partial.write_bytes(b"half")
    row.path.unlink()

    found = archive.check()
    assert found.missing_files == (row.path.relative_to(archive.folder).as_posix(),)
    assert found.orphan_files == (stray,)
    assert found.partial_files == (partial,)
    assert not found.ok
    assert "1 instance row(s) without a file" in found.describe()
    assert archive.check(at_start=True) == found  # the start's reading, on the writer

    archive.repair(found)
    after = archive.check()
    assert after.missing_files == found.missing_files, "the row is all that is left: kept"
    assert after.orphan_files == ()
    assert after.partial_files == ()
    assert archive.instance(ds.SOPInstanceUID) is not None
    assert not partial.exists()
    assert [p.read_bytes() for p in (archive.folder / "orphans").iterdir()] == [b"orphan"]
    archive.close()


def test_a_daemon_starting_on_an_inconsistent_archive_repairs_it(tmp_path: Path) -> None:
    """What start() finds and repairs, reading the rows on the writer's connection."""
    config = load(_config_file(tmp_path))
    daemon = Daemon(config).start()
    ds = objects.ct()
    scu.store(daemon, [ds])
    daemon.stop()
    with Archive(tmp_path / "archive") as archive:
        stray = archive.files / "1.2.3" / "4.5" / "6.7.dcm"
        stray.parent.mkdir(parents=True)
        stray.write_bytes(b"orphan")
        (archive.incoming / "deadbeef.part").write_bytes(b"half")
    daemon = Daemon(config).start()
    try:
        assert daemon.consistency is not None
        assert daemon.consistency.orphan_files == (stray,)
        assert len(daemon.consistency.partial_files) == 1
        assert daemon.archive.check().ok
        assert daemon.archive.instance(ds.SOPInstanceUID) is not None
    finally:
        daemon.stop()


def _config_file(folder: Path) -> Path:
    path = folder / "simdaemon.toml"
    path.write_text(
        '[daemon]\nport = 0\narchive = "archive"\n'
        '[[trusted]]\nae_title = "SIMCLIENT"\nip = "127.0.0.1"\nport = 51403\n'
    )
    return path


#: A daemon whose archive does not fsync, as the pytest plugin's are, in a process of its own.
_NOT_DURABLE = """
import sys
from pathlib import Path
from simdaemon import Daemon
from simdaemon.config import load

class TestLike(Daemon):
    durable_archive = False

daemon = TestLike(load(Path(sys.argv[1]))).start()
assert daemon.archive.durable is False
print(f"listening on {daemon.host}:{daemon.port}", flush=True)
sys.stdin.read()
"""


def test_an_archive_without_fsync_still_survives_a_killed_process(tmp_path: Path) -> None:
    """The plugin's archives use synchronous = OFF: a commit is in the OS's cache, which a
    killed process does not lose (only a power cut would)."""
    config = _config_file(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", _NOT_DURABLE, str(config)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("listening on "), line
    host, port = line.split()[2].rsplit(":", 1)
    datasets = [objects.ct() for _ in range(20)]
    answers = scu.store(_Remote(host, int(port)), datasets)
    assert [a.Status for a in answers] == [0] * len(datasets)
    os.kill(process.pid, signal.SIGKILL)
    process.wait(30)
    with Archive(tmp_path / "archive") as archive:
        assert archive.count() == len(datasets)
        assert all(archive.instance(ds.SOPInstanceUID) is not None for ds in datasets)
