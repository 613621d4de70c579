"""Benchmark: a trusted C-ECHO while unassociated peers hold connections open (slowloris).

Issue 15 found that 10 idle TCP connections locked trusted clients out and that stalled
half-requests held threads forever. With ``[limits]`` in place, connections that have not
sent a complete A-ASSOCIATE-RQ take no association slot, so a trusted client should see
about the same latency with or without them. This script measures, in one run and side by
side, association + C-ECHO + release from a pynetdicom SCU:

* idle: nothing else connected;
* loaded: with ``--idle`` connections that sent nothing and ``--stalled`` connections that
  sent the first 20 bytes of an A-ASSOCIATE-RQ and stopped, all kept open (the request
  deadline is raised to its 30 s maximum for the run so they stay).

The two conditions alternate in blocks (``--blocks`` of each) so machine noise hits both
alike; the table gives medians and 90th percentiles, the loaded/idle ratio (the issue's
target: within 2x), and the daemon process's threads and RSS in each condition.
Only 127.0.0.1 is used. Run by hand: ``python benchmarks/slowloris.py``.
"""

from __future__ import annotations

import argparse
import logging
import math
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from pynetdicom import AE

from simdaemon import Config, Daemon, TrustedEntity
from simdaemon.config import DaemonSettings, Limits

HOST = "127.0.0.1"
CLIENT_AE = "SIMCLIENT"
VERIFICATION = "1.2.840.10008.1.1"
RATIO_TARGET = 2.0
#: The first 20 bytes of an A-ASSOCIATE-RQ: type 1, a length, protocol version, called AE.
HALF_REQUEST = b"\x01\x00\x00\x00\x00\xcd\x00\x01\x00\x00VMSDBD    "


def rss_mb() -> float:
    """This process's resident set size (the daemon runs in it), in MB."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]


def echo_ms(ae: AE, port: int) -> float:
    """One association + C-ECHO + release; its duration in milliseconds."""
    begin = time.perf_counter()
    assoc = ae.associate(HOST, port, ae_title="VMSDBD")
    if not assoc.is_established:
        raise SystemExit("the trusted echo was refused: the limits do not hold")
    status = assoc.send_c_echo()
    assoc.release()
    elapsed = (time.perf_counter() - begin) * 1000.0
    if status.Status != 0x0000:
        raise SystemExit(f"C-ECHO answered 0x{status.Status:04X}")
    return elapsed


def open_peers(port: int, idle: int, stalled: int) -> list[socket.socket]:
    """``idle`` silent connections and ``stalled`` ones holding half a request."""
    peers = [socket.create_connection((HOST, port)) for _ in range(idle + stalled)]
    for raw in peers[idle:]:
        raw.sendall(HALF_REQUEST)
    return peers


def settle(timeout: float = 10.0) -> None:
    """Wait for the closed peers' association threads to end, so "idle" is idle again."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread.name.startswith("AcceptorThread"):
            thread.join(max(0.0, deadline - time.monotonic()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=100, help="echoes per block")
    parser.add_argument("--blocks", type=int, default=2, help="blocks of each condition")
    parser.add_argument("--idle", type=int, default=50, help="silent connections")
    parser.add_argument("--stalled", type=int, default=50, help="half-request connections")
    args = parser.parse_args()
    logging.disable(logging.ERROR)

    with tempfile.TemporaryDirectory() as folder:
        config = Config(
            daemon=DaemonSettings(port=0, archive=Path(folder)),
            limits=Limits(
                max_connections=args.idle + args.stalled + 16, associate_request_timeout=30.0
            ),
            trusted=(TrustedEntity(CLIENT_AE, HOST, 51403),),
        )
        ae = AE(ae_title=CLIENT_AE)
        ae.add_requested_context(VERIFICATION)
        with Daemon(config) as daemon:
            for _ in range(10):  # warm-up
                echo_ms(ae, daemon.port)
            samples: dict[str, list[float]] = {"idle": [], "loaded": []}
            threads: dict[str, int] = {}
            rss: dict[str, float] = {}
            for _ in range(args.blocks):
                threads["idle"], rss["idle"] = threading.active_count(), rss_mb()
                samples["idle"] += [echo_ms(ae, daemon.port) for _ in range(args.rounds)]
                peers = open_peers(daemon.port, args.idle, args.stalled)
                try:
                    samples["loaded"] += [echo_ms(ae, daemon.port) for _ in range(args.rounds)]
                    threads["loaded"], rss["loaded"] = threading.active_count(), rss_mb()
                finally:
                    for raw in peers:
                        raw.close()
                    settle()

    idle = statistics.median(samples["idle"])
    print(
        f"trusted assoc+echo+release, {args.blocks} x {args.rounds} rounds per condition; "
        f"loaded = {args.idle} idle + {args.stalled} stalled connections open"
    )
    print()
    print("| condition | median ms | p90 ms | ratio to idle | threads | RSS MB |")
    print("|---|---|---|---|---|---|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(
            f"| {name} | {median:.2f} | {p90(values):.2f} | {median / idle:.2f} "
            f"| {threads[name]} | {rss[name]:.0f} |"
        )
    ratio = statistics.median(samples["loaded"]) / idle
    verdict = "within" if ratio <= RATIO_TARGET else "OVER"
    print(f"\nloaded/idle median ratio {ratio:.2f}: {verdict} the {RATIO_TARGET:g}x target")


if __name__ == "__main__":
    main()
