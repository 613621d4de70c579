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

Each round starts the process, then tries to connect every millisecond or so; on the first
connection accepted it sends an A-ASSOCIATE-RQ and a C-ECHO-RQ, built by hand (PS3.8 9.3,
PS3.7 9.3.5), and the figure is the time from ``Popen`` to the C-ECHO-RSP with status 0x0000
(the release follows, untimed). The process is then stopped (SIGTERM) before the next server
starts. Python children run with bytecode caching on (``PYTHONDONTWRITEBYTECODE`` removed)
after a warm-up round, as an installed package runs.

Why by hand: a pynetdicom requestor takes ~100 ms to give up on a refused connection, so a
probe built on it sees start-up in steps of ~100 ms, and every Python server here looked the
same (a median of 444 ms against a minimum of 331, whatever the server). A refused ``connect``
costs microseconds, and the hand-built association adds no requestor threads to the probe.

Goal (issue 17): ``simdaemon serve`` <= 1.0 x the bare pynetdicom process, in this run.
Only 127.0.0.1 is used. Run by hand: ``python benchmarks/startup.py [--rounds N]``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

# The tests' helpers (a reserved loopback port, hand-built PDUs), from this repository.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.adversarial.pdus import (
    ASSOCIATE_AC,
    P_DATA,
    RELEASE_RQ,
    VERIFICATION,
    associate_rq,
    header,
    read_pdu,
)
from tests.qr_servers import PortReservation

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


def _element(group: int, element: int, value: bytes) -> bytes:
    """An Implicit VR Little Endian data element (PS3.5 7.1.3)."""
    return struct.pack("<HHL", group, element, len(value)) + value


#: A C-ECHO-RQ command set (PS3.7 9.3.5.1): Affected SOP Class, C-ECHO-RQ, message 1, no data.
_ECHO_COMMAND_BODY = (
    _element(0, 0x0002, VERIFICATION.encode() + b"\0")
    + _element(0, 0x0100, struct.pack("<H", 0x0030))
    + _element(0, 0x0110, struct.pack("<H", 1))
    + _element(0, 0x0800, struct.pack("<H", 0x0101))
)
_ECHO_COMMAND = _element(0, 0x0000, struct.pack("<L", len(_ECHO_COMMAND_BODY))) + _ECHO_COMMAND_BODY


def _p_data(context_id: int, command: bytes) -> bytes:
    """A P-DATA-TF PDU carrying ``command`` whole in one PDV (last fragment of a command)."""
    pdv = struct.pack(">LBB", len(command) + 2, context_id, 0x03) + command
    return header(P_DATA, len(pdv)) + pdv


def _status(p_data: bytes) -> int | None:
    """The Status (0000,0900) of the command in a P-DATA-TF body, if it carries one."""
    command = p_data[6:]  # PDV length (4), context ID, message control header
    offset = 0
    while offset + 8 <= len(command):
        group, element, length = struct.unpack_from("<HHL", command, offset)
        if (group, element) == (0, 0x0900) and length == 2:
            return int(struct.unpack_from("<H", command, offset + 8)[0])
        offset += 8 + length
    return None


def echo_answered(called: str, port: int) -> float | None:
    """One probe: None if the port refuses; else when the C-ECHO-RSP (0x0000) came.

    The time is :func:`time.perf_counter`'s, taken before the release that follows.

    Raises when the server accepted the connection but did not answer the echo with success:
    a server that refuses the probe has to be fixed, not waited for.
    """
    try:
        raw = socket.create_connection((HOST, port), timeout=DEADLINE_S)
    except ConnectionRefusedError:
        return None
    with raw:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        raw.sendall(associate_rq(CLIENT_AE, called, (VERIFICATION,)))
        answer = read_pdu(raw)
        if answer is None or answer[0] != ASSOCIATE_AC:
            raise RuntimeError(f"{called} did not accept the association: {answer!r}")
        raw.sendall(_p_data(1, _ECHO_COMMAND))
        response = read_pdu(raw)
        answered = time.perf_counter()
        if response is None or response[0] != P_DATA or _status(response[1]) != 0:
            raise RuntimeError(f"{called} did not answer the C-ECHO with success: {response!r}")
        raw.sendall(header(RELEASE_RQ, 4) + bytes(4))
        read_pdu(raw)  # A-RELEASE-RP
    return answered


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
            while (answered := echo_answered(called, reserved.port)) is None:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited: {(folder / 'server.out').read_text()}")
                if time.perf_counter() - started > DEADLINE_S:
                    raise RuntimeError(f"{name} did not answer in {DEADLINE_S} s")
                time.sleep(0.001)  # a benchmark's probe interval, not synchronisation
            return answered - started
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
