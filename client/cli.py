"""``python -m dbdaemon_client``: try the client against a server before writing code.

Errors are printed as the client raises them (the server's reason in words) and exit 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from pydicom.dataset import Dataset

from dbdaemon_client import __version__
from dbdaemon_client.daemon_client import DaemonClient, Entity, Target
from dbdaemon_client.errors import ClientError
from dbdaemon_client.results import (
    ImageResult,
    PatientResult,
    SeriesResult,
    StudyResult,
    text,
    values,
)

__all__ = ["main", "run"]

PROG = "python -m dbdaemon_client"
EXAMPLES = f"""examples:
  {PROG} --local SIMCLIENT@127.0.0.1:51403 --daemon VMSDBD@127.0.0.1:51402 echo
  {PROG} ... find STUDY -k PatientID=SYN000000
  {PROG} ... find IMAGE -k StudyInstanceUID=1.2.3 -k SeriesInstanceUID=1.2.3.4 --json
  {PROG} ... retrieve STUDY -k PatientID=SYN000001 --into ./course
  {PROG} ... export-plan SYN000000 PLAN1 --into ./plan

--local is this machine as the server knows it: a trusted entity (ARIA: the DB Daemon's
Trusted Application Entities) whose port is where retrieve receives the moved objects.
"""

_RESULTS: dict[str, Callable[[Dataset], Target]] = {
    "PATIENT": PatientResult.of,
    "STUDY": StudyResult.of,
    "SERIES": SeriesResult.of,
    "IMAGE": ImageResult.of,
}
#: What find shows at each level when the command line names no return key of its own.
DEFAULT_KEYS = {
    "PATIENT": ("PatientID", "PatientName", "PatientBirthDate", "PatientSex"),
    "STUDY": ("PatientID", "PatientName", "StudyInstanceUID", "StudyID", "StudyDate",
              "StudyDescription"),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID", "Modality", "SeriesNumber",
               "SeriesDescription"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "SOPClassUID",
              "InstanceNumber"),
}  # fmt: skip
#: The unique keys of each level and the levels above it: what a move names a target by.
UNIQUE_KEYS = {
    "PATIENT": ("PatientID",),
    "STUDY": ("StudyInstanceUID",),
    "SERIES": ("StudyInstanceUID", "SeriesInstanceUID"),
    "IMAGE": ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"),
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
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Talk to an ARIA DB Daemon, simdaemon or any DICOM Query/Retrieve server.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}",
                        help="print the version")  # fmt: skip
    parser.add_argument("--local", type=_entity, required=True, metavar="AE@HOST:PORT",
                        help="this client: a trusted entity of the server; PORT is where "
                             "retrieve receives")  # fmt: skip
    parser.add_argument("--daemon", type=_entity, required=True, metavar="AE@HOST:PORT",
                        help="the server: AE title (ARIA: VMSDBD), host, DICOM port")  # fmt: skip
    parser.add_argument("--connect-timeout", type=float, default=3.0, metavar="SECONDS",
                        help="for the connection and the association (default 3)")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS",
                        help="for each answer once associated (default 60)")  # fmt: skip
    commands = parser.add_subparsers(
        dest="command",
        required=True,
        metavar="COMMAND",
        help="what to do (COMMAND --help for its options)",
    )
    commands.add_parser("echo", help="C-ECHO: is the server there and does it accept us?",
                        description="Send a C-ECHO; exit 0 only on success.")  # fmt: skip
    find = commands.add_parser(
        "find", help="C-FIND at a level; prints one line (or JSON object) per match",
        description="C-FIND at LEVEL. Keys given as KEY=VALUE are matched; keys given as KEY "
        "are returned. Without return keys of your own, each level shows a useful default "
        "set. Hierarchical servers need the unique keys of every level above LEVEL.",
    )  # fmt: skip
    retrieve = commands.add_parser(
        "retrieve", help="find, show what matched, then C-MOVE exactly that to --local",
        description="Find at LEVEL, show the patients, studies and object counts that "
        "matched, then move each match by its unique keys to --local and write the files "
        "into --into. More than one patient is refused unless --all-matching is given.",
    )  # fmt: skip
    for command in (find, retrieve):
        command.add_argument("level", choices=list(_RESULTS), metavar="LEVEL",
                             help="PATIENT, STUDY, SERIES or IMAGE")  # fmt: skip
        command.add_argument("-k", "--key", action="append", default=[], metavar="KEY[=VALUE]",
                             help="an attribute keyword; with =VALUE a matching key, without "
                                  "a return key (repeatable)")  # fmt: skip
        command.add_argument("--model", choices=["study", "patient"], default=None,
                             help="Study Root (default) or Patient Root; PATIENT is always "
                                  "Patient Root")  # fmt: skip
    find.add_argument("--json", action="store_true",
                      help="print a JSON array of {keyword: value} objects")  # fmt: skip
    retrieve.add_argument("--into", type=Path, required=True, metavar="FOLDER",
                          help="where the received files are written")  # fmt: skip
    retrieve.add_argument("--all-matching", action="store_true",
                          help="retrieve even when more than one patient matches")  # fmt: skip
    export = commands.add_parser(
        "export-plan", help="a plan and everything it references, as files",
        description="Retrieve an RT Plan, its structure set, the images those reference and "
        "the doses computed on the plan.",
    )  # fmt: skip
    export.add_argument("patient_id", help="the patient's ID")
    export.add_argument("plan", help="the plan's SOP Instance UID or RT Plan Label")
    export.add_argument("--into", type=Path, required=True, metavar="FOLDER",
                        help="where the files are written")  # fmt: skip
    return parser


def _model(level: str, model: str | None) -> str:
    """The information model: PATIENT level exists in Patient Root only; else Study Root."""
    return "patient" if level == "PATIENT" else model or "study"


def _plain(identifier: Dataset) -> dict[str, Any]:
    """An identifier as {keyword: text, list of texts, or list of such objects}."""
    shown: dict[str, Any] = {}
    for element in identifier:
        if not element.keyword:
            continue
        if element.VR == "SQ":
            shown[element.keyword] = [_plain(item) for item in element.value]
        elif element.VM > 1:
            shown[element.keyword] = values(identifier, element.keyword)
        else:
            shown[element.keyword] = text(identifier, element.keyword)
    return shown


def _find(client: DaemonClient, args: argparse.Namespace) -> None:
    keys = _keys(args.key)
    if all(value is not None for value in keys.values()):  # no return key of the user's own
        for keyword in DEFAULT_KEYS[args.level]:
            keys.setdefault(keyword, None)
    found = client.find(args.level, _model(args.level, args.model), **keys)
    if args.json:
        print(json.dumps([_plain(identifier) for identifier in found], indent=2))
        return
    for identifier in found:
        shown = _plain(identifier)
        shown.pop("SpecificCharacterSet", None)
        print(", ".join(f"{k}={v}" for k, v in shown.items()))


@dataclass
class _Plan:
    """What a retrieve is about to move: the targets, their patients and object counts."""

    targets: list[Target]
    patients: dict[str, str]  # patient ID -> name
    studies: set[str]
    objects: int

    def describe(self) -> str:
        """``2 patients (P1 (Doe^Jo), P2), 2 studies, 52 objects``."""
        named = ", ".join(f"{pid} ({name})" if name else pid for pid, name in self.patients.items())
        return (
            f"{_count(len(self.patients), 'patient', 'patients')} ({named}), "
            f"{_count(len(self.studies), 'study', 'studies')}, "
            f"{_count(self.objects, 'object', 'objects')}"
        )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _survey(client: DaemonClient, targets: list[Target]) -> _Plan:
    """Count what ``targets`` hold, by queries that name every level's unique key."""
    plan = _Plan(targets, {}, set(), 0)

    def series_of(study_uid: str) -> None:
        plan.studies.add(study_uid)
        for series in client.find_series(study_uid):
            plan.objects += len(client.find_images(series))

    def patient_of(study_uid: str) -> None:
        studies = client.find("STUDY", StudyInstanceUID=study_uid, PatientID=None,
                              PatientName=None)  # fmt: skip
        for study in studies[:1]:
            plan.patients.setdefault(text(study, "PatientID"), text(study, "PatientName"))

    for target in targets:
        if isinstance(target, PatientResult):
            plan.patients[target.patient_id] = target.name
            for study in client.find_studies(target.patient_id):
                series_of(study.study_uid)
        elif isinstance(target, StudyResult):
            patient_of(target.study_uid)
            series_of(target.study_uid)
        elif isinstance(target, SeriesResult):
            patient_of(target.study_uid)
            plan.studies.add(target.study_uid)
            plan.objects += len(client.find_images(target))
        else:
            patient_of(target.study_uid)
            plan.studies.add(target.study_uid)
            plan.objects += 1
    return plan


def _retrieve(client: DaemonClient, args: argparse.Namespace) -> int:
    keys = _keys(args.key)
    for keyword in (*UNIQUE_KEYS[args.level], *DEFAULT_KEYS[args.level][:2]):
        keys.setdefault(keyword, None)  # asked for, so each match can be moved by its own keys
    found = client.find(args.level, _model(args.level, args.model), **keys)
    if not found:
        print(f"{PROG}: nothing matched at {args.level} level; nothing was moved", file=sys.stderr)
        return 1
    plan = _survey(client, [_RESULTS[args.level](i) for i in found])
    print(f"about to retrieve {plan.describe()}")
    if len(plan.patients) > 1 and not args.all_matching:
        print(
            f"{PROG}: the query matched {len(plan.patients)} patients; nothing was moved. "
            "Narrow it with more -k KEY=VALUE, or give --all-matching to retrieve them all",
            file=sys.stderr,
        )
        return 1
    written = [p for t in plan.targets for p in client.retrieve(t, args.into)]
    print(f"retrieved {len(written)} object(s) into {args.into}")
    if len(written) != plan.objects:
        print(f"{PROG}: {plan.objects} object(s) were listed but {len(written)} arrived",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if getattr(args, "level", None) == "PATIENT" and getattr(args, "model", None) == "study":
        parser.error(
            "PATIENT level is in the Patient Root model only (Study Root starts at STUDY): "
            "use --model patient, or leave --model out"
        )
    client = DaemonClient(
        args.local, args.daemon, connect_timeout=args.connect_timeout, idle_timeout=args.timeout
    )
    try:
        if args.command == "echo":
            client.echo()
            print(f"C-ECHO to {args.daemon.ae_title}: success")
        elif args.command == "find":
            _find(client, args)
        elif args.command == "retrieve":
            return _retrieve(client, args)
        else:
            files = client.export_plan(args.patient_id, args.plan, args.into)
            print(f"exported {len(files)} object(s) into {args.into}")
    except ClientError as error:
        print(f"{PROG}: {error}", file=sys.stderr)
        return 1
    return 0


def run() -> NoReturn:
    """The console script and ``python -m dbdaemon_client``: exit with :func:`main`'s status."""
    sys.exit(main())
