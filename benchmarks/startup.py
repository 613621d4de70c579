"""Benchmark: from process start to the first C-ECHO answered, against Orthanc, DCMTK, pynetdicom.

A CI job or a fixture that runs ``simdaemon serve`` waits for it before its first test; this
measures that wait beside the peers users have, in one run, the servers interleaved round by
round so that machine noise hits each alike:

* ``simdaemon serve``: ``python -m simdaemon serve`` with its defaults (the HTTP console on)
  and an empty archive; ``simdaemon serve --no-console`` the same without the console;
* ``bare pynetdicom``: a pynetdicom ``AE`` with library defaults, the Verification context,
  ``start_server(block=True)``: the floor a Python DICOM server starts from;
* ``Orthanc``: Debian's ``/usr/sbin/Orthanc`` with a temporary storage folder;
* ``dcmqrscp``: DCMTK's Q/R SCP with a one-AE configuration.

Each round starts the process, then tries an association + C-ECHO every millisecond or so
until one is answered with status 0x0000; the figure is the time from ``Popen`` to that
answer. The process is then stopped (SIGTERM) before the next server starts. Python children
run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed) after a warm-up round, as
an installed package runs.

Goal (issue 17): ``simdaemon serve`` <= 1.0 x the bare pynetdicom process, in this run.
Only 127.0.0.1 is used. Run by hand: ``python benchmarks/startup.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# The tests' helpers (a reserved loopback port, a C-ECHO probe), from this repository.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.qr_servers import Peer, PortReservation, echo

HOST = "127.0.0.1"
CLIENT_AE = "STARTSCU"
ORTHANC = "/usr/sbin/Orthanc"
DCMQRSCP = "/usr/bin/dcmqrscp"
#: Longer than any server here needs; a server that takes longer is reported as failed.
DEADLINE_S = 60.0

BARE = """
import sys
from pynetdicom import AE
ae = AE(ae_title="BARE")
ae.add_supported_context("1.2.840.10008.1.1")
ae.start_server(("127.0.0.1", int(sys.argv[1])), block=True)
"""


def _python_environment() -> dict[str, str]:
    environment = dict(os.environ)
    environment.pop("PYTHONDONTWRITEBYTECODE", None)
    return environment


def simdaemon_command(folder: Path, port: int, console: bool) -> list[str]:
    command = [sys.executable, "-m", "simdaemon", "serve", "--port", str(port),
               "--archive", str(folder / "archive"), "--trust", f"{CLIENT_AE}@{HOST}:11112",
               "--log-level", "WARNING"]  # fmt: skip
    return command if console else [*command, "--no-console"]


def orthanc_command(folder: Path, port: int) -> list[str]:
    import json

    with PortReservation() as http:
        config = {
            "Name": "STARTUP", "StorageDirectory": str(folder / "db"),
            "IndexDirectory": str(folder / "db"), "Plugins": [], "LuaScripts": [],
            "HttpPort": http.port, "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False, "DicomAet": "ORTHANC", "DicomPort": port,
            "DicomCheckCalledAet": False, "DicomAlwaysAllowEcho": True, "SaveJobs": False,
        }  # fmt: skip
    (folder / "orthanc.json").write_text(json.dumps(config))
    return [ORTHANC, f"--logfile={folder / 'orthanc.log'}", str(folder / "orthanc.json")]


def dcmqrscp_command(folder: Path, port: int) -> list[str]:
    storage = folder / "storage"
    storage.mkdir(exist_ok=True)
    (folder / "dcmqrscp.cfg").write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 16\n"
        "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
        f"AETable BEGIN\nDCMQRSCP {storage} RW (200, 1024mb) ANY\nAETable END\n"
    )
    return [DCMQRSCP, "--config", str(folder / "dcmqrscp.cfg")]


#: name -> (called AE title, command for (folder, port), whether it is a Python process).
Command = Callable[[Path, int], list[str]]
SERVERS: dict[str, tuple[str, Command, bool]] = {
    "simdaemon serve": ("VMSDBD", lambda f, p: simdaemon_command(f, p, True), True),
    "simdaemon serve --no-console": ("VMSDBD", lambda f, p: simdaemon_command(f, p, False), True),
    "bare pynetdicom": ("BARE", lambda f, p: [sys.executable, "-c", BARE, str(p)], True),
    "Orthanc": ("ORTHANC", orthanc_command, False),
    "dcmqrscp": ("DCMQRSCP", dcmqrscp_command, False),
}


def start_to_echo(name: str, folder: Path) -> float:
    """Seconds from starting ``name`` to its first answered C-ECHO; the process is stopped."""
    called, command, python = SERVERS[name]
    folder.mkdir(parents=True)
    with PortReservation() as reserved:
        arguments = command(folder, reserved.port)
        environment = _python_environment() if python else None
        log = (folder / "server.out").open("w")
        started = time.perf_counter()
        process = subprocess.Popen(arguments, cwd=folder, env=environment, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        try:
            while not echo(Peer(called, HOST, reserved.port), CLIENT_AE, timeout=5.0):
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {(folder / 'server.out').read_text()}")
                if time.perf_counter() - started > DEADLINE_S:
                    raise RuntimeError(f"{name} did not answer in {DEADLINE_S} s")
                time.sleep(0.001)  # a benchmark's probe interval, not synchronisation
            return time.perf_counter() - started
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, 15)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7, help="starts of each server")
    args = parser.parse_args()
    names = [n for n in SERVERS if n not in ("Orthanc", "dcmqrscp")]
    names += [
        n for n, path in (("Orthanc", ORTHANC), ("dcmqrscp", DCMQRSCP)) if Path(path).exists()
    ]
    times: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory(prefix="startup-") as temporary:
        root = Path(temporary)
        for name in names:  # warm-up: bytecode caches, the page cache
            start_to_echo(name, root / "warm-up" / name.replace(" ", "_"))
        for round_number in range(args.rounds):
            for name in names:
                folder = root / str(round_number) / name.replace(" ", "_").replace("-", "")
                times[name].append(start_to_echo(name, folder))
    load = os.getloadavg()
    print(f"process start -> first C-ECHO answered; {args.rounds} rounds; "
          f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")  # fmt: skip
    bare = statistics.median(times["bare pynetdicom"])
    print("| server | median ms | min ms | max ms | / bare pynetdicom |\n|---|---|---|---|---|")
    for name, measured in times.items():
        median = statistics.median(measured)
        print(f"| {name} | {median * 1000:.0f} | {min(measured) * 1000:.0f} | "
              f"{max(measured) * 1000:.0f} | {median / bare:.2f} |")  # fmt: skip
    ratio = statistics.median(times["simdaemon serve"]) / bare
    verdict = "met" if ratio <= 1.0 else "NOT met"
    print(f"goal: simdaemon serve <= 1.0 x bare pynetdicom: {verdict} ({ratio:.2f} x)")


if __name__ == "__main__":
    main()
