"""Benchmark: what 10,000 rejected associations cost the daemon in memory and on disk.

Issue 15 item 5: each rejection used to cost ~1.4 KB of RSS and ~350 B of archive, never
trimmed. This script starts a daemon in this process, warms it up with a few hundred
rejected associations (pynetdicom's and SQLite's own caches settle), then reads the
process's resident set size (``VmRSS``), sends ``--count`` more A-ASSOCIATE-RQs from an AE
the daemon does not trust, one after the other, and reads it again. It prints RSS before
and after, the growth per rejection, the archive's size, and how many audit rows and events
in memory hold the rejections. Acceptance: RSS grows by less than 10 MB over 10,000.

Only 127.0.0.1 is used. Run by hand: ``python benchmarks/audit_memory.py [--count N]``.
"""

from __future__ import annotations

import argparse
import gc
import logging
import sqlite3
import tempfile
import time
from pathlib import Path

from pynetdicom import AE

from simdaemon import Config, Daemon
from simdaemon.config import DaemonSettings

HOST = "127.0.0.1"
VERIFICATION = "1.2.840.10008.1.1"
WARMUP = 300


def rss_kib() -> int:
    """This process's resident set size, in KiB (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def reject(daemon: Daemon, count: int) -> int:
    """Request ``count`` associations as an AE the daemon rejects; return how many were not.

    An association the daemon accepted would be a bug and stops the run; one that ended
    otherwise (a time-out on a loaded machine) is counted and reported.
    """
    ae = AE(ae_title="STRANGER")
    ae.acse_timeout = ae.connection_timeout = 10
    ae.add_requested_context(VERIFICATION)
    missed = 0
    for _ in range(count):
        assoc = ae.associate(HOST, daemon.port, ae_title=daemon.ae_title)
        if assoc.is_established:
            assoc.release()
            raise RuntimeError("the daemon accepted an AE it does not trust")
        missed += not assoc.is_rejected
    return missed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=10_000, help="rejected associations")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)  # one rejection = 3 lines
    with tempfile.TemporaryDirectory(prefix="audit-memory-") as scratch:
        folder = Path(scratch)
        config = Config(daemon=DaemonSettings(port=0, host=HOST, archive=folder))
        with Daemon(config) as daemon:
            reject(daemon, WARMUP)
            gc.collect()
            before = rss_kib()
            database = folder / "archive.sqlite"
            size_before = database.stat().st_size
            started = time.perf_counter()
            missed = reject(daemon, args.count)
            elapsed = time.perf_counter() - started
            gc.collect()
            after = rss_kib()
            size_after = database.stat().st_size
            wal = database.with_name(database.name + "-wal")
            wal_size = wal.stat().st_size if wal.exists() else 0
            in_memory = len(daemon.audit)
        with sqlite3.connect(database) as db:
            rows = db.execute("SELECT count(*) FROM audit").fetchone()[0]
        db.close()
    growth = after - before
    print(
        f"associations requested: {args.count} after {WARMUP} warm-up, {elapsed:.1f} s; "
        f"not answered with a rejection (time-outs): {missed}"
    )
    print(f"RSS before: {before / 1024:.1f} MiB, after: {after / 1024:.1f} MiB")
    print(f"RSS growth: {growth / 1024:.2f} MiB ({growth * 1024 / args.count:.0f} B per rejection)")
    print(
        f"archive.sqlite growth: {(size_after - size_before) / 1024:.1f} KiB "
        f"(write-ahead log, reused after each checkpoint: {wal_size / 1024:.0f} KiB)"
    )
    print(f"audit rows persisted: {rows}; events held in memory: {in_memory}")
    print("acceptance (< 10 MiB growth):", "met" if growth < 10 * 1024 else "NOT met")


if __name__ == "__main__":
    main()
