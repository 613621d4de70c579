"""Benchmark: what the daemon costs over a bare pynetdicom SCP, for start-up and for C-ECHO.

The daemon is meant to be cheap enough that a test suite can start one per test and talk to
it as fast as to pynetdicom itself. This script measures, in one run and side by side:

* start: ``Daemon(config).start()`` (construction included, returns once listening) against
  a bare ``AE`` with the same presentation contexts and ``start_server(block=False)``;
* echo: association + C-ECHO + release from a pynetdicom SCU, daemon against bare SCP,
  interleaved round by round after a warm-up so machine noise hits both alike;
* echoscu: the same through DCMTK's ``echoscu`` as a subprocess, when it is installed.

Only 127.0.0.1 is used. Run by hand: ``python benchmarks/echo.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import logging
import math
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pynetdicom import AE
from pynetdicom.transport import ThreadedAssociationServer

from simdaemon import Config, Daemon, TrustedEntity
from simdaemon.access import ABSTRACT_SYNTAXES, TRANSFER_SYNTAXES
from simdaemon.config import DaemonSettings
from simdaemon.dcmtk import find_dcmtk

HOST = "127.0.0.1"
CLIENT_AE = "SIMCLIENT"
SERVER_AE = "VMSDBD"
VERIFICATION = "1.2.840.10008.1.1"
WARMUP = 20
ECHOSCU_ROUNDS = 30
START_TARGET_MS = 10.0
RATIO_TARGET = 1.0

Row = tuple[str, list[float], list[float]]


def make_config(archive: Path) -> Config:
    """A daemon on an ephemeral loopback port that trusts the benchmark's SCU."""
    return Config(
        daemon=DaemonSettings(port=0, archive=archive),
        trusted=(TrustedEntity(CLIENT_AE, HOST, 51403),),
    )


def start_bare() -> ThreadedAssociationServer:
    """A bare pynetdicom SCP with the daemon's presentation contexts, listening."""
    ae = AE(ae_title=SERVER_AE)
    for syntax in ABSTRACT_SYNTAXES:
        ae.add_supported_context(syntax, list(TRANSFER_SYNTAXES))
    server = ae.start_server((HOST, 0), block=False)
    assert server is not None
    return server


def p90(values: list[float]) -> float:
    """Nearest-rank 90th percentile."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.9 * len(ordered)) - 1, 0)]


def timed_ms(action: Callable[[], object]) -> float:
    """Run ``action`` once; return its duration in milliseconds."""
    begin = time.perf_counter()
    action()
    return (time.perf_counter() - begin) * 1000.0


def measure_start(rounds: int, archive: Path) -> tuple[list[float], list[float]]:
    """Time start until listening, daemon then bare, per round; stopping is not timed."""
    config = make_config(archive)
    daemon_ms: list[float] = []
    bare_ms: list[float] = []
    for _ in range(rounds):
        begin = time.perf_counter()
        daemon = Daemon(config).start()
        daemon_ms.append((time.perf_counter() - begin) * 1000.0)
        daemon.stop()
        begin = time.perf_counter()
        server = start_bare()
        bare_ms.append((time.perf_counter() - begin) * 1000.0)
        server.shutdown()
    return daemon_ms, bare_ms


def echo_once(scu: AE, port: int) -> None:
    """Associate, C-ECHO, release; fail loudly on anything but success."""
    assoc = scu.associate(HOST, port, ae_title=SERVER_AE)
    if not assoc.is_established:
        raise RuntimeError(f"association to port {port} not established")
    status = assoc.send_c_echo()
    assoc.release()
    if status is None or status.get("Status") != 0x0000:
        raise RuntimeError(f"C-ECHO to port {port} failed: {status}")


def measure_echo(rounds: int, daemon_port: int, bare_port: int) -> tuple[list[float], list[float]]:
    """Time association + C-ECHO + release, alternating daemon and bare SCP each round."""
    scu = AE(ae_title=CLIENT_AE)
    scu.add_requested_context(VERIFICATION)
    for _ in range(WARMUP):
        echo_once(scu, daemon_port)
        echo_once(scu, bare_port)
    daemon_ms: list[float] = []
    bare_ms: list[float] = []
    for _ in range(rounds):
        daemon_ms.append(timed_ms(lambda: echo_once(scu, daemon_port)))
        bare_ms.append(timed_ms(lambda: echo_once(scu, bare_port)))
    return daemon_ms, bare_ms


def measure_echoscu(
    echoscu: str, rounds: int, daemon_port: int, bare_port: int
) -> tuple[list[float], list[float]]:
    """Time ``echoscu`` subprocess runs, alternating daemon and bare SCP each round."""

    def run(port: int) -> None:
        command = [echoscu, "-aet", CLIENT_AE, "-aec", SERVER_AE, HOST, str(port)]
        subprocess.run(command, capture_output=True, timeout=30, check=True)

    for _ in range(3):
        run(daemon_port)
        run(bare_port)
    daemon_ms: list[float] = []
    bare_ms: list[float] = []
    for _ in range(rounds):
        daemon_ms.append(timed_ms(lambda: run(daemon_port)))
        bare_ms.append(timed_ms(lambda: run(bare_port)))
    return daemon_ms, bare_ms


def print_table(rows: list[Row]) -> None:
    """One line per measurement: daemon and bare median/p90 in ms, and their ratios."""
    header = ("daemon med", "daemon p90", "bare med", "bare p90", "ratio med", "ratio p90")
    print(f"{'measurement (ms)':<22}{'n':>5}" + "".join(f"{h:>12}" for h in header))
    for name, daemon_ms, bare_ms in rows:
        med_d, med_b = statistics.median(daemon_ms), statistics.median(bare_ms)
        p90_d, p90_b = p90(daemon_ms), p90(bare_ms)
        cells = (med_d, p90_d, med_b, p90_b, med_d / med_b, p90_d / p90_b)
        print(f"{name:<22}{len(daemon_ms):>5}" + "".join(f"{v:>12.2f}" for v in cells))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=200, help="echo rounds per target")
    parser.add_argument("--start-rounds", type=int, default=50, help="start rounds per target")
    args = parser.parse_args()
    if args.rounds < 1 or args.start_rounds < 1:
        parser.error("rounds must be at least 1")
    logging.getLogger("pynetdicom").setLevel(logging.ERROR)

    folder = Path(tempfile.mkdtemp(prefix="simdaemon-bench-"))
    start_daemon, start_bare_ms = measure_start(args.start_rounds, folder / "start")
    rows: list[Row] = [("start until listening", start_daemon, start_bare_ms)]
    skipped: str | None = None
    daemon = Daemon(make_config(folder / "echo")).start()
    server = start_bare()
    try:
        bare_port = int(server.server_address[1])
        echo = measure_echo(args.rounds, daemon.port, bare_port)
        rows.append(("assoc+echo+release", *echo))
        echoscu = find_dcmtk("echoscu")
        if echoscu is None:
            skipped = "DCMTK echoscu not found (pynetdicom's echoscu is not DCMTK): row skipped"
        else:
            dcmtk = measure_echoscu(echoscu, ECHOSCU_ROUNDS, daemon.port, bare_port)
            rows.append(("echoscu (DCMTK)", *dcmtk))
    finally:
        daemon.stop()
        server.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    daemon.raise_errors()

    print_table(rows)
    if skipped:
        print(skipped)
    start_med = statistics.median(start_daemon)
    ratio_med = statistics.median(echo[0]) / statistics.median(echo[1])
    print()
    print(
        f"target: daemon start <= {START_TARGET_MS:.0f} ms (median): {start_med:.2f} ms, "
        f"{'met' if start_med <= START_TARGET_MS else 'NOT met'}"
    )
    print(
        f"target: echo ratio daemon/bare <= {RATIO_TARGET:.1f} (median): {ratio_med:.2f}, "
        f"{'met' if ratio_med <= RATIO_TARGET else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
