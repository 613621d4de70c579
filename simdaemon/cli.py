"""The ``simdaemon`` command line: run a daemon, import files, list patients, show config.

``serve`` prints exactly one line to stdout once connections are accepted —
``listening on HOST:PORT as AE_TITLE`` — so scripts can wait for it; everything else is
logged to stderr. Configuration errors exit with status 2 and the message, no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pynetdicom import _config

from simdaemon import config as configuration
from simdaemon.archive import DATABASE, Archive, ArchiveError
from simdaemon.config import Config, ConfigError
from simdaemon.console.settings import ConsoleSettings
from simdaemon.printable import EscapingFormatter, printable
from simdaemon.server import Daemon, DaemonError

if TYPE_CHECKING:  # the import pipeline and synthetic patients load for the commands using them
    from simdaemon import local

__all__ = ["main"]

LOGGER = logging.getLogger(__name__)

#: Who ``serve --demo`` trusts unless told otherwise: a client on this machine.
DEMO_CLIENT = {"ae_title": "SIMCLIENT", "ip": "127.0.0.1", "port": 51403}

#: The synthetic patients ``serve --demo`` starts with: how many, CT slices and matrix.
DEMO_PATIENTS, DEMO_SLICES, DEMO_MATRIX = 3, 20, 256

#: How often ``audit --follow`` looks for new events.
AUDIT_POLL_S = 0.5

EXIT_CONFIG = 2
EXIT_RUNTIME = 1


class _Version(argparse.Action):
    """``--version``: read the installed version only when asked (it costs ~25 ms to read)."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object) -> None:
        import simdaemon

        print(f"{parser.prog} {simdaemon.__version__}")  # on stdout, as argparse's own
        parser.exit()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="simdaemon", description="A simulated Varian ARIA DICOM DB Daemon."
    )
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the daemon until SIGINT or SIGTERM")
    serve.add_argument("--config", type=Path, help="TOML configuration file")
    serve.add_argument("--host", help="address to listen on ([daemon] host)")
    serve.add_argument("--port", type=int, help="port to listen on, 0 = any free ([daemon] port)")
    serve.add_argument("--ae-title", help="the daemon's AE title ([daemon] ae_title)")
    serve.add_argument("--archive", type=Path, help="archive folder ([daemon] archive)")
    serve.add_argument(
        "--trust",
        action="append",
        default=[],
        metavar="AE@IP:PORT",
        help="trust an entity (repeatable), e.g. MYCLIENT@127.0.0.1:51403",
    )
    serve.add_argument(
        "--demo",
        action="store_true",
        help="three synthetic patients in a temporary archive removed at exit, or in "
        "--archive DIR (seeded when it holds no patient, kept); trusts "
        "SIMCLIENT@127.0.0.1:51403 unless --trust is given",
    )
    serve.add_argument(
        "--console",
        metavar="HOST:PORT",
        help="serve the HTTP API and web console there (default 127.0.0.1 and the first free "
        "port after the DICOM port that no trusted entity uses; an ephemeral one for port 0)",
    )
    serve.add_argument("--no-console", action="store_true", help="no HTTP API and web console")
    serve.add_argument(
        "--console-token",
        metavar="TOKEN",
        help="token every console request must carry (generated and printed when the console "
        "listens beyond loopback without one)",
    )
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR")

    load = commands.add_parser(
        "import", help="run DICOM files or folders through the daemon's import rules"
    )
    load.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    load.add_argument("--config", type=Path, help="TOML configuration file")
    load.add_argument("--archive", type=Path, help="archive folder ([daemon] archive)")
    load.add_argument(
        "--as",
        dest="calling_ae",
        default="LOCAL",
        metavar="AE",
        help="import as this AE: a trusted entity's import charset applies (default LOCAL)",
    )

    seed = commands.add_parser(
        "seed", help="fill an archive with synthetic RT patients through the import rules"
    )
    seed.add_argument("--patients", type=int, default=3, help="how many (default 3)")
    seed.add_argument("--seed", type=int, default=0, help="first seed (default 0)")
    seed.add_argument("--slices", type=int, default=100, help="CT slices each (default 100)")
    seed.add_argument("--matrix", type=int, default=512, help="CT rows and columns (512)")
    seed.add_argument("--config", type=Path, help="TOML configuration file")
    seed.add_argument("--archive", type=Path, help="archive folder ([daemon] archive)")

    audit = commands.add_parser("audit", help="print an archive's audit trail, one event a line")
    audit.add_argument("--config", type=Path, help="TOML configuration file")
    audit.add_argument("--archive", type=Path, help="archive folder ([daemon] archive)")
    audit.add_argument("--follow", action="store_true", help="keep printing new events")
    audit.add_argument("--json", action="store_true", help="one JSON object per line")
    audit.add_argument(
        "--findings", action="store_true", help="only the findings (what clients did wrong)"
    )

    patients = commands.add_parser("patients", help="list the patients an archive holds")
    patients.add_argument("--config", type=Path, help="TOML configuration file")
    patients.add_argument("--archive", type=Path, help="archive folder ([daemon] archive)")
    patients.add_argument("--json", action="store_true", help="one JSON object per patient")

    cfg = commands.add_parser("config", help="show or check a configuration")
    shown = cfg.add_mutually_exclusive_group(required=True)
    shown.add_argument("--example", action="store_true", help="print a commented example")
    shown.add_argument("--check", type=Path, metavar="FILE", help="validate FILE, print it")

    complete = commands.add_parser(
        "completion",
        help="print a shell completion script",
        description="Print a completion script; for bash: "
        'eval "$(simdaemon completion bash)" in ~/.bashrc.',
    )
    complete.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete in")
    return parser


def parse_trust(value: str) -> dict[str, Any]:
    """Parse ``AE@IP:PORT`` into a ``[[trusted]]`` table; errors name the option."""
    ae_title, at, address = value.partition("@")
    ip, colon, port = address.rpartition(":")
    if not (at and colon and ae_title and ip and port.isdigit()):
        raise ConfigError("--trust", value, "expected AE@IP:PORT, e.g. MYCLIENT@127.0.0.1:51403")
    return {"ae_title": ae_title, "ip": ip.strip("[]"), "port": int(port)}


#: How many ports after the DICOM port ``serve`` tries for the console before an ephemeral one.
CONSOLE_PORTS_TRIED = 10


def console_candidates(args: argparse.Namespace, daemon: Daemon) -> list[ConsoleSettings]:
    """Where ``serve`` tries to put the console, in order; errors name the option."""
    token = args.console_token
    try:
        if args.console is not None:
            host, colon, port = args.console.rpartition(":")
            if not (colon and host and port.isdigit()):
                raise ConfigError(
                    "--console", args.console, "expected HOST:PORT, e.g. 127.0.0.1:8080"
                )
            return [ConsoleSettings(host.strip("[]"), int(port), token)]
        taken = {entity.port for entity in daemon.trusted}
        ports = [
            port
            for port in range(daemon.port + 1, daemon.port + 1 + CONSOLE_PORTS_TRIED)
            if port not in taken and port <= 65535 and daemon.config.daemon.port != 0
        ]
        return [ConsoleSettings("127.0.0.1", port, token) for port in [*ports, 0]]
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError("--console", args.console or args.console_token, str(error)) from None


@contextlib.contextmanager
def _yielding_to_the_dicom_side() -> Iterator[None]:
    """Let the daemon's threads take the GIL within 0.5 ms (not 5) while this thread works.

    Starting the console imports FastAPI (~100 ms of pure Python) while the DICOM side is
    already answering. At the default switch interval every step of an association that
    waits for the GIL waits up to 5 ms for the import to let go of it, and the first C-ECHO
    after start took ~50 ms longer than without the console (benchmarks/startup.py).
    """
    default = sys.getswitchinterval()
    sys.setswitchinterval(min(default, 0.0005))
    try:
        yield
    finally:
        sys.setswitchinterval(default)


def start_console(args: argparse.Namespace, daemon: Daemon) -> None:
    """Start the console at the first candidate that binds; say where (and its token)."""
    candidates = console_candidates(args, daemon)
    for number, settings in enumerate(candidates, start=1):
        try:
            console = daemon.start_console(settings)
        except DaemonError:
            if number == len(candidates):
                raise
            continue
        _say(f"console on {console.url}")
        if console.token is not None and args.console_token is None:
            _say(f"console token: {console.token} (open {console.url}?token={console.token})")
        return


def build_config(args: argparse.Namespace, demo_archive: Path | None) -> Config:
    """Merge the configuration file and the command-line options, file first."""
    data: dict[str, Any] = {}
    base_dir: Path | None = None
    if args.config is not None:
        data = configuration.read(args.config)
        base_dir = args.config.resolve().parent
    daemon = data.setdefault("daemon", {})
    overrides = {
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "ae_title": getattr(args, "ae_title", None),
        "archive": str(args.archive.resolve()) if args.archive else None,
    }
    daemon.update({key: value for key, value in overrides.items() if value is not None})
    trusted = data.setdefault("trusted", [])
    trusted.extend(parse_trust(value) for value in getattr(args, "trust", []))
    if demo_archive is not None:
        daemon["archive"] = str(demo_archive)
        if not trusted:
            trusted.append(dict(DEMO_CLIENT))
    return configuration.from_mapping(data, base_dir)


def _has_patients(folder: Path) -> bool:
    """Whether ``folder`` holds an archive with at least one patient (not to seed it again)."""
    if not (folder / DATABASE).exists():
        return False
    with Archive(folder) as archive:
        return bool(archive.patients())


def serve(args: argparse.Namespace) -> int:
    """Run a daemon until SIGINT or SIGTERM; return the exit status."""
    # One record, one line, whatever a peer put in an AE title or a Patient ID: control
    # characters in every logger's lines (pynetdicom's included) are escaped.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=args.log_level.upper(), handlers=[handler])
    if logging.getLogger().level > logging.DEBUG:
        # One line per decision is ours to write; pynetdicom's step-by-step INFO is noise here.
        logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        # pynetdicom formats every identifier for its DEBUG log even when nothing will print
        # it: a tenth of the time of a C-FIND response. This process is the daemon's alone.
        _config.LOG_REQUEST_IDENTIFIERS = False
        _config.LOG_RESPONSE_IDENTIFIERS = False
    with contextlib.ExitStack() as cleanup:
        # --demo with --archive DIR: the demo in DIR, kept; else in a folder removed at exit.
        demo_archive = None
        if args.demo:
            demo_archive = args.archive.resolve() if args.archive else None
            if demo_archive is None:
                temporary = tempfile.TemporaryDirectory(prefix="simdaemon-demo-")
                demo_archive = Path(cleanup.enter_context(temporary))
        config = build_config(args, demo_archive)
        if demo_archive is not None and not _has_patients(demo_archive):
            # Something to query and move: three synthetic patients.
            from simdaemon import local

            _say(
                f"seeding {DEMO_PATIENTS} synthetic patients ({DEMO_SLICES} CT slices of "
                f"{DEMO_MATRIX} x {DEMO_MATRIX} and an RT plan each) into {config.daemon.archive}"
            )
            local.seed_patients(config, DEMO_PATIENTS, 0, slices=DEMO_SLICES, matrix=DEMO_MATRIX)
        if not config.trusted:
            LOGGER.warning(
                "no trusted entities: every association will be rejected; add one with "
                "--trust AE@IP:PORT or a [[trusted]] table in the configuration file"
            )
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        try:
            daemon = Daemon(config, command_line=True).start()
        except DaemonError as error:
            print(f"simdaemon: {error}", file=sys.stderr)
            return EXIT_RUNTIME
        try:
            if not args.no_console:
                try:
                    with _yielding_to_the_dicom_side():
                        start_console(args, daemon)
                except DaemonError as error:
                    print(f"simdaemon: {error}", file=sys.stderr)
                    return EXIT_RUNTIME
            for entity in daemon.trusted:
                LOGGER.info(
                    "trusting '%s' from %s (C-MOVE port %d)",
                    entity.ae_title,
                    entity.ip,
                    entity.port,
                )
            # stdout carries the listening line alone (scripts read it); the rest is stderr.
            _say(f"archive: {config.daemon.archive}")
            if args.demo:
                _say(_demo_guide(daemon, kept=args.archive is not None))
            print(f"listening on {daemon.host}:{daemon.port} as {daemon.ae_title}", flush=True)
            stop.wait()
        finally:
            daemon.stop()
    return 0


def _say(text: str) -> None:
    """A line for the person at the terminal: stderr, whatever the log level."""
    print(text, file=sys.stderr, flush=True)


def _demo_guide(daemon: Daemon, kept: bool) -> str:
    """What the demo made and how to look at it from another terminal."""
    archive = daemon.config.daemon.archive
    lines = [f"demo archive: {archive} ({'kept' if kept else 'deleted when the daemon stops'})"]
    for entity in daemon.trusted:
        lines.append(
            f"trusted entity: {entity.ae_title} calling from {entity.ip}, receiving C-MOVEs "
            f"on port {entity.port}"
        )
    first = daemon.trusted[0].ae_title if daemon.trusted else "SIMCLIENT"
    lines += [
        "from another terminal:",
        f"  simdaemon patients --archive {archive}",
        f"  simdaemon audit --follow --archive {archive}",
        f"  echoscu -aet {first} -aec {daemon.ae_title} {daemon.host} {daemon.port}",
    ]
    return "\n".join(lines)


def import_command(args: argparse.Namespace) -> int:
    """Import files through the pipeline; print each failure and a summary."""
    from simdaemon import investigation, local

    config = build_config(args, None)
    missing = [path for path in args.paths if not path.exists()]
    if missing:
        print(f"simdaemon: {missing[0]}: no such file or folder", file=sys.stderr)
        return EXIT_RUNTIME
    summary = local.import_files(args.paths, config, args.calling_ae)
    for path, reason in summary.skipped:
        print(f"skipped {path}: {reason}")
    for path, result in summary.warnings:
        print(f"warning 0x{result.status:04X} {path}: {printable(result.detail)}")
    for path, result in summary.failed:
        print(f"FAILED 0x{result.status:04X} {path}: {printable(result.detail)}")
    stored = len(summary.results) - len(summary.failed)
    print(
        f"imported {stored} of {len(summary.results)} object(s) into {config.daemon.archive} "
        f"({len(summary.warnings)} with warnings, {len(summary.failed)} failed and parked in "
        f"{investigation.resolve(config.investigation, config.daemon.archive).failed_import_folder}"
        f", {len(summary.skipped)} skipped)"
    )
    if stored == 0:
        print(f"simdaemon: nothing imported: {_why_nothing(args.paths, summary)}", file=sys.stderr)
        return EXIT_RUNTIME
    return EXIT_RUNTIME if summary.failed else 0


def _why_nothing(paths: Sequence[Path], summary: local.ImportSummary) -> str:
    """Why an import stored nothing, in the words a user needs to fix it."""
    if summary.failed:
        return "every object failed; the FAILED lines above say why"
    if summary.skipped:
        return f"{len(summary.skipped)} file(s) found, none of them DICOM (see the lines above)"
    where = " ".join(str(path) for path in paths)
    return f"no files in {where}"


def seed_command(args: argparse.Namespace) -> int:
    """Seed synthetic patients; print a summary (and each failure)."""
    from simdaemon import local

    config = build_config(args, None)
    if args.patients < 1 or args.slices < 1 or args.matrix < 8:
        print("simdaemon: --patients and --slices must be 1 or more, --matrix 8 or more",
              file=sys.stderr)  # fmt: skip
        return EXIT_CONFIG
    started = time.perf_counter()
    summary = local.seed_patients(
        config, args.patients, args.seed, slices=args.slices, matrix=args.matrix
    )
    for label, result in summary.failed:
        print(f"FAILED 0x{result.status:04X} {label}: {result.detail}")
    stored = len(summary.results) - len(summary.failed)
    print(
        f"seeded {args.patients} patient(s), {stored} object(s), into {config.daemon.archive} "
        f"in {time.perf_counter() - started:.1f} s"
    )
    return EXIT_RUNTIME if summary.failed else 0


def audit_command(args: argparse.Namespace) -> int:
    """Print the audit trail of a running or stopped daemon's archive; follow it on request."""
    config = build_config(args, None)
    if not (config.daemon.archive / "archive.sqlite").exists():
        print(f"simdaemon: no archive at {config.daemon.archive}", file=sys.stderr)
        return EXIT_RUNTIME
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with Archive(config.daemon.archive) as archive:
        row = 0
        while True:
            events, row = archive.audit_after(row)
            for event in events:
                if args.findings and event.operation != "finding":
                    continue
                line = (
                    json.dumps(event.as_dict(), ensure_ascii=False)
                    if args.json
                    else (event.describe())
                )
                print(line, flush=True)
            if not args.follow or stop.wait(AUDIT_POLL_S):
                return 0


def patients_command(args: argparse.Namespace) -> int:
    """Print the patients the configured archive holds."""
    from simdaemon import local

    config = build_config(args, None)
    if not (config.daemon.archive / "archive.sqlite").exists():
        print(f"simdaemon: no archive at {config.daemon.archive}", file=sys.stderr)
        return EXIT_RUNTIME
    with Archive(config.daemon.archive) as archive:
        patients = archive.patients()
    if args.json:
        for patient in patients:
            print(json.dumps(dataclasses.asdict(patient), ensure_ascii=False))
    else:
        print(local.format_patients(patients))
    return 0


def show_config(args: argparse.Namespace) -> int:
    """Print the example configuration, or a checked file as the daemon understands it."""
    if args.example:
        print(configuration.example(), end="")
    else:
        print(configuration.render(configuration.load(args.check)), end="")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return serve(args)
        if args.command == "import":
            return import_command(args)
        if args.command == "patients":
            return patients_command(args)
        if args.command == "seed":
            return seed_command(args)
        if args.command == "audit":
            return audit_command(args)
        if args.command == "completion":
            from simdaemon import completion

            print(completion.script(_parser(), args.shell), end="")
            return 0
        return show_config(args)
    except ConfigError as error:
        print(f"simdaemon: configuration error: {error}", file=sys.stderr)
        return EXIT_CONFIG
    except ArchiveError as error:
        print(f"simdaemon: {error}", file=sys.stderr)
        return EXIT_RUNTIME


if __name__ == "__main__":
    raise SystemExit(main())
