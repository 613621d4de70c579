"""``python -m client``: try the client against a daemon before writing code.

::

    python -m client --local SIMCLIENT@127.0.0.1:51403 --daemon VMSDBD@127.0.0.1:51402 echo
    python -m client ... find STUDY -k PatientID=SYN000000 -k StudyDate= -k StudyID=
    python -m client ... retrieve SERIES -k SeriesInstanceUID=1.2.3 --into ./ct
    python -m client ... export-plan SYN000000 PLAN1 --into ./plan

Errors are printed as the client raises them (the daemon's reason in words) and exit 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from client.daemon_client import DaemonClient, Entity, Target
from client.errors import ClientError
from client.results import ImageResult, PatientResult, SeriesResult, StudyResult

__all__ = ["main"]

_RESULTS: dict[str, Callable[[Dataset], Target]] = {
    "PATIENT": PatientResult.of,
    "STUDY": StudyResult.of,
    "SERIES": SeriesResult.of,
    "IMAGE": ImageResult.of,
}


def _entity(value: str) -> Entity:
    ae_title, at, address = value.partition("@")
    host, colon, port = address.rpartition(":")
    if not (at and colon and ae_title and host and port.isdigit()):
        raise argparse.ArgumentTypeError(f"{value!r}: expected AE@HOST:PORT")
    return Entity(ae_title, host, int(port))


def _keys(pairs: Sequence[str]) -> dict[str, str | None]:
    keys: dict[str, str | None] = {}
    for pair in pairs:
        keyword, equals, value = pair.partition("=")
        keys[keyword] = value if equals else None
    return keys


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m client", description=__doc__.split("\n")[0])
    parser.add_argument("--local", type=_entity, required=True, metavar="AE@HOST:PORT",
                        help="this client: a trusted entity of the daemon")  # fmt: skip
    parser.add_argument("--daemon", type=_entity, required=True, metavar="AE@HOST:PORT")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("echo", help="C-ECHO")
    for name, helptext in (("find", "C-FIND"), ("retrieve", "find, then move to self")):
        command = commands.add_parser(name, help=helptext)
        command.add_argument("level", choices=list(_RESULTS))
        command.add_argument("-k", "--key", action="append", default=[], metavar="KEY[=VALUE]",
                             help="a key by keyword; without =VALUE, a return key")  # fmt: skip
        command.add_argument("--model", choices=["study", "patient"], default="study")
        if name == "retrieve":
            command.add_argument("--into", type=Path, required=True, help="folder for files")
    export = commands.add_parser("export-plan", help="a plan and everything it references")
    export.add_argument("patient_id")
    export.add_argument("plan", help="SOP Instance UID or RT Plan Label")
    export.add_argument("--into", type=Path, required=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    client = DaemonClient(args.local, args.daemon)
    try:
        if args.command == "echo":
            client.echo()
            print(f"C-ECHO to {args.daemon.ae_title}: success")
        elif args.command == "find":
            for identifier in client.find(args.level, args.model, **_keys(args.key)):
                shown = ", ".join(f"{e.keyword}={e.value}" for e in identifier if e.keyword
                                  and e.keyword not in ("SpecificCharacterSet",))  # fmt: skip
                print(shown)
        elif args.command == "retrieve":
            make = _RESULTS[args.level]
            found = client.find(args.level, args.model, **_keys(args.key))
            targets = [make(identifier) for identifier in found]
            written = [p for t in targets for p in client.retrieve(t, args.into)]
            print(f"retrieved {len(written)} object(s) into {args.into}")
        else:
            files = client.export_plan(args.patient_id, args.plan, args.into)
            print(f"exported {len(files)} object(s) into {args.into}")
    except ClientError as error:
        print(f"python -m client: {error}", file=sys.stderr)
        return 1
    return 0
