"""The daemon's configuration: one TOML file mirroring the service's configuration dialog.

Every table and field has a default, so an empty file (or none) is a valid configuration.
Loading is strict: an unknown key, a wrong type or a bad value raises :class:`ConfigError`
naming the key with its table, the value given and what is allowed — the message a person
needs to fix the file without reading this code.

Each field's validator and comment live in its dataclass metadata; loading and
:func:`render` (which writes the commented example) both read them, so the documentation
of a field cannot drift from its check.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import tomllib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.charset import python_encoding

from simdaemon.faults import Fault, FaultError
from simdaemon.net.guard import DEFAULT_MAX_PDU_LENGTH

__all__ = [
    "AuditSettings",
    "Config",
    "ConfigError",
    "DaemonSettings",
    "FindingsSettings",
    "Images",
    "Investigation",
    "Limits",
    "PatientCreation",
    "PatientMatching",
    "Quirks",
    "Storage",
    "TrustedEntity",
    "example",
    "load",
    "loads",
    "normalize_ae_title",
    "read",
    "render",
]

#: Specific Character Set defined terms the daemon can decode and encode.
CHARSET_TERMS: frozenset[str] = frozenset(term for term in python_encoding if term)


class _Absent:
    """Marks a :class:`ConfigError` about a key that has no value (missing, or no TOML)."""

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names key, value and remedy."""

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        if value is ABSENT:
            super().__init__(f"{key}: {allowed}")
        else:
            super().__init__(f"{key} = {_show(value)} is not allowed: {allowed}")


def _show(value: object) -> str:
    """Show a value the way it would be written in TOML, so the user recognises it."""
    if isinstance(value, (str, Path)):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


# --- field checks: each takes the typed value and returns an error text or None -----------

Check = Callable[[Any], "str | None"]


def normalize_ae_title(value: str) -> str:
    """Return an AE title as the daemon compares it: trailing spaces are not significant."""
    return value.rstrip(" ")


def _check_ae_title(value: str) -> str | None:
    title = normalize_ae_title(value)
    allowed = "1 to 16 characters, printable ASCII without backslash (trailing spaces ignored)"
    if not title.strip():
        return f"an AE title must not be empty; expected {allowed}"
    if len(title) > 16:
        return f"{len(title)} characters is too long; expected {allowed}"
    bad = [c for c in title if c == "\\" or not " " <= c <= "~"]
    if bad:
        return f"character {bad[0]!r} is not allowed; expected {allowed}"
    return None


def _check_host(value: str) -> str | None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return "expected an IPv4 or IPv6 address such as '127.0.0.1' (or '0.0.0.0' for all)"
    return None


def _check_ip(value: str) -> str | None:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "expected an IP address such as '10.130.10.133' or a CIDR block such as '10.0.0.0/8'"
    return None


def _range(low: int, high: int) -> Check:
    def check(value: int) -> str | None:
        if not low <= value <= high:
            return f"expected an integer from {low} to {high}"
        return None

    return check


def _seconds(low: float, high: float) -> Check:
    def check(value: float) -> str | None:
        if not low < value <= high:
            return f"expected a number of seconds above {low:g}, at most {high:g}"
        return None

    return check


def _between(low: float, high: float) -> Check:
    def check(value: float) -> str | None:
        if not low <= value <= high:
            return f"expected a number from {low:g} to {high:g}"
        return None

    return check


def _one_of(*choices: str) -> Check:
    def check(value: str) -> str | None:
        if value not in choices:
            return "expected one of " + ", ".join(f'"{c}"' for c in choices)
        return None

    return check


def _check_charset(value: str) -> str | None:
    unknown = [term for term in value.split("\\") if term not in CHARSET_TERMS]
    if unknown:
        known = ", ".join(sorted(CHARSET_TERMS))
        return (
            f"{unknown[0]!r} is not a Specific Character Set defined term; "
            f"expected one of {known} (several separated by backslashes)"
        )
    return None


def _setting(default: Any, doc: str, check: Check | None = None) -> Any:
    return field(default=default, metadata={"doc": doc, "check": check})


def _required(doc: str, check: Check | None = None) -> Any:
    return field(metadata={"doc": doc, "check": check})


# --- the tables -----------------------------------------------------------------------------


@dataclass(frozen=True)
class DaemonSettings:
    """``[daemon]``: the dialog's "DICOM Network Settings"."""

    ae_title: str = _setting(
        "VMSDBD", "1-16 chars, no backslash/control chars; trailing spaces ignored", _check_ae_title
    )
    host: str = _setting(
        "127.0.0.1", "network interface; loopback by default (training safety)", _check_host
    )
    port: int = _setting(51402, "0 = ephemeral; the bound port is reported", _range(0, 65535))
    archive: Path = _setting(Path("archive"), "folder holding archive.sqlite and files/")
    max_associations: int = _setting(
        10, "associations served at once; one more is rejected transiently", _range(1, 1000)
    )


@dataclass(frozen=True)
class Limits:
    """``[limits]``: what a peer may take before and after it is accepted (not in the dialog).

    Bounds on resources an unauthenticated peer can reach: connections (each holds a socket
    and two threads), the time to send an A-ASSOCIATE-RQ, and the PDU sizes the daemon
    reads into memory; and on what one accepted request may take: a query's run time.
    """

    max_connections: int = _setting(
        64,
        "TCP connections open at once, associated or not; one more is closed at once",
        _range(1, 10_000),
    )
    associate_request_timeout: float = _setting(
        5.0,
        "seconds from connecting to a complete A-ASSOCIATE-RQ; then the connection is closed "
        "(at most 30, pynetdicom's ACSE timeout, which ends the wait too)",
        _seconds(0.0, 30.0),
    )
    max_associate_request: int = _setting(
        256 * 1024,
        "bytes an A-ASSOCIATE-RQ PDU may announce; a longer one is aborted unread",
        _range(1024, 16 * 1024 * 1024),
    )
    max_pdu_length: int = _setting(
        DEFAULT_MAX_PDU_LENGTH,
        "maximum PDU length advertised and accepted (bytes); a longer PDU aborts",
        _range(4096, 64 * 1024 * 1024),
    )
    query_budget_s: float = _setting(
        30.0,
        "seconds a C-FIND or a C-MOVE's lookup may run; then it ends with 0xC000 and an audit line",
        _between(0.001, 86400.0),
    )


@dataclass(frozen=True)
class PatientMatching:
    """``[patient_matching]``: which demographics must agree to attach to a stored patient."""

    patient_id: bool = _setting(True, "Patient ID (0010,0020), exact after trimming")
    patient_id2: bool = _setting(False, "first value of Other Patient IDs (0010,1000)")
    last_name: bool = _setting(True, "family name, case-insensitive")
    first_name: bool = _setting(True, "given name, case-insensitive")
    birth_date: bool = _setting(False, "Patient's Birth Date, exact")


@dataclass(frozen=True)
class PatientCreation:
    """``[patient_creation]``: what happens when no stored patient matches."""

    automatic: bool = _setting(True, "create the patient; false answers 0xC001")
    hospital: str = _setting("", '"Hospital / Department", stamped on created patients')
    department: str = _setting("", "stamped on created patients")


@dataclass(frozen=True)
class Images:
    """``[images]``: options applied when images are imported."""

    create_review_task: bool = _setting(False, "a review task per imported treatment image")
    user_origin_from_data_collection_center: bool = _setting(
        False, "CT: user origin from Data Collection Center (0018,9313)"
    )
    z_offset_mm: float = _setting(0.0, "added to the user origin's z")


@dataclass(frozen=True)
class Investigation:
    """``[investigation]``: tools for finding out what a client sent and why it failed."""

    save_all_iods: bool = _setting(False, "every incoming and outgoing IOD as a DICOM file")
    iod_folder: Path = _setting(Path("iods"), "where save_all_iods writes")
    failed_import_folder: Path = _setting(
        Path("failed"), "objects that failed to import, each with a reason file"
    )
    sql_trace: bool = _setting(False, "every SQL statement to sqltrace.log")


@dataclass(frozen=True)
class Storage:
    """``[storage]``: what an import does with an object the archive already holds."""

    on_duplicate: str = _setting(
        "reject",
        'same SOP Instance UID again: "reject" (0xC004), "overwrite" or "ignore" (success)',
        _one_of("reject", "overwrite", "ignore"),
    )


@dataclass(frozen=True)
class Quirks:
    """``[quirks]``: behaviours observed at some sites, reproduced on request."""

    failed_import_status: str = _setting(
        "failure",
        '"success" answers 0x0000 for a failed import and only parks the object',
        _one_of("failure", "success"),
    )
    course_id_as_study_id: bool = _setting(
        True, "C-FIND StudyID is the course ID (C1, C2, ... when the object had none)"
    )
    aria_series_descriptions: bool = _setting(
        True,
        'RT Plan / Structure Set / registration series described "ARIA RadOnc Plans", '
        '"ARIA RadOnc Structure Sets", "Image Registration"',
    )
    series_without_study_keys: bool = _setting(
        True, "SERIES responses omit study-level keys other than StudyInstanceUID"
    )
    image_move_requires_series_uid: bool = _setting(
        False, "IMAGE-level C-MOVE with only SOPInstanceUID fails 0xC001 unless it is a plan"
    )
    move_universal_match: bool = _setting(
        False,
        "a C-MOVE whose level's unique key is empty, absent or a wildcard moves everything "
        "it matches; false refuses it (0xC000, naming what it would move)",
    )


@dataclass(frozen=True)
class AuditSettings:
    """``[audit]``: how much of the audit trail is kept, in memory and in the archive."""

    memory_events: int = _setting(
        1000,
        "recent events daemon.audit keeps in memory (all go to the archive)",
        _range(10, 10**6),
    )
    coalesce_s: float = _setting(
        60.0,
        "rejections of one host for one reason within this many seconds are one persisted "
        "row with a repeat count; 0 = a row each",
        _between(0.0, 86400.0),
    )
    retention_days: float = _setting(
        30.0, "persisted events older than this are deleted; 0 = kept for ever", _between(0, 36500)
    )
    max_events: int = _setting(
        100_000,
        "persisted events kept at most, oldest deleted first; 0 = no limit",
        _range(0, 10**9),
    )


_SEVERITIES = ("none", "danger", "nonconformant", "portability", "style")


@dataclass(frozen=True)
class FindingsSettings:
    """``[findings]``: what the daemon does when a client does something a server would punish.

    Every finding is recorded (audit event ``finding``, one log line); a request whose finding
    is at least ``fail_on`` severe is refused, where it can still be (see the findings page).
    """

    fail_on: str = _setting(
        "danger",
        "refuse a request whose finding is at least this severe: "
        '"none", "danger", "nonconformant", "portability" or "style"',
        _one_of(*_SEVERITIES),
    )
    churn_per_second: int = _setting(
        10,
        "more associations than this per second from one AE is association-per-request-churn",
        _range(1, 100_000),
    )
    enabled: bool = _setting(
        True, "false: no rule runs (the benchmarks' baseline); nothing is recorded or refused"
    )


@dataclass(frozen=True)
class TrustedEntity:
    """``[[trusted]]``: an application entity the daemon talks to ("Trusted Application Entities").

    Calls are accepted from ``ae_title`` only when they come from ``ip`` (an address, or a
    CIDR block as an extension). ``port`` is not checked on incoming calls — clients call from
    ephemeral ports — it is where the daemon connects to deliver a C-MOVE.
    """

    ae_title: str = _required("calling AE title of the client", _check_ae_title)
    ip: str = _required("address the calls must come from (CIDR allowed)", _check_ip)
    port: int = _required("where the daemon connects for C-MOVE to this AE", _range(1, 65535))
    import_charset: str = _setting(
        "ISO_IR 6", "applies when an object has no Specific Character Set", _check_charset
    )
    override_import_charset: bool = _setting(
        False, "apply import_charset even when the object names one"
    )
    export_charset: str = _setting(
        "ISO_IR 192", "character set of everything sent to this AE", _check_charset
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "ae_title", normalize_ae_title(self.ae_title))

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        """The addresses calls from this entity may come from."""
        return ipaddress.ip_network(self.ip, strict=False)

    def allows(self, address: str) -> bool:
        """Return whether a call from ``address`` may be this entity."""
        try:
            return ipaddress.ip_address(address) in self.network
        except ValueError:
            return False


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``Config()`` is the daemon's embedded default."""

    daemon: DaemonSettings = field(default_factory=DaemonSettings)
    patient_matching: PatientMatching = field(default_factory=PatientMatching)
    patient_creation: PatientCreation = field(default_factory=PatientCreation)
    images: Images = field(default_factory=Images)
    investigation: Investigation = field(default_factory=Investigation)
    storage: Storage = field(default_factory=Storage)
    quirks: Quirks = field(default_factory=Quirks)
    limits: Limits = field(default_factory=Limits)
    audit: AuditSettings = field(default_factory=AuditSettings)
    findings: FindingsSettings = field(default_factory=FindingsSettings)
    trusted: tuple[TrustedEntity, ...] = ()
    #: ``[[faults]]``: injected faults in force from the start (see :mod:`simdaemon.faults`).
    faults: tuple[Fault, ...] = ()

    def entity(self, ae_title: str) -> TrustedEntity | None:
        """Return the trusted entity with this AE title, if any."""
        title = normalize_ae_title(ae_title)
        return next((e for e in self.trusted if e.ae_title == title), None)


_TABLES: dict[str, type[Any]] = {
    "daemon": DaemonSettings,
    "patient_matching": PatientMatching,
    "patient_creation": PatientCreation,
    "images": Images,
    "investigation": Investigation,
    "storage": Storage,
    "quirks": Quirks,
    "limits": Limits,
    "audit": AuditSettings,
    "findings": FindingsSettings,
}
_LISTS: dict[str, type[Any]] = {"trusted": TrustedEntity, "faults": Fault}


# --- loading --------------------------------------------------------------------------------


def _convert(where: str, value: object, kind: Any, base_dir: Path) -> Any:
    """Check a TOML value against a field's type and return it as that type."""
    if kind is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(where, value, "expected true or false")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(where, value, "expected an integer")
    if kind is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(where, value, "expected a number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise ConfigError(where, value, "expected a string")
    if kind is Path:
        if isinstance(value, (str, Path)) and str(value):
            path = Path(value)
            return path if path.is_absolute() else base_dir / path
        raise ConfigError(where, value, "expected a folder path as a non-empty string")
    raise TypeError(f"no conversion for {kind!r}")  # a programming error, not a user's


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _type_hints(cls: type[Any]) -> dict[str, Any]:
    """A table's field types, resolved once per class (it costs ~0.2 ms, at every daemon start)."""
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls)
    return hints


def _build(cls: type[Any], table: object, where: str, base_dir: Path) -> Any:
    """Build one table's dataclass from its TOML mapping, checking every key."""
    if not isinstance(table, Mapping):
        raise ConfigError(where, table, "expected a table")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = _type_hints(cls)
    for key in table:
        if key not in fields:
            raise ConfigError(
                f"{where}.{key}", table[key], f"unknown key; {where} takes {', '.join(fields)}"
            )
    values: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name not in table:
            if f.default is dataclasses.MISSING:
                raise ConfigError(
                    key, ABSENT, f"missing; {where} needs {name}: {f.metadata['doc']}"
                )
            if hints[name] is Path:  # a default folder is relative to the file too
                values[name] = _convert(key, f.default, Path, base_dir)
            continue
        value = _convert(key, table[name], hints[name], base_dir)
        check: Check | None = f.metadata.get("check")
        problem = check(value) if check else None
        if problem:
            raise ConfigError(key, table[name], problem)
        values[name] = value
    return cls(**values)


def from_mapping(data: Mapping[str, Any], base_dir: Path | None = None) -> Config:
    """Build a :class:`Config` from parsed TOML; relative paths resolve against ``base_dir``.

    Without ``base_dir`` (no file), paths resolve against the working directory, except the
    ``[investigation]`` folders: they stay relative, and the daemon puts them in its archive
    (:func:`simdaemon.investigation.resolve`).
    """
    base = base_dir if base_dir is not None else Path.cwd()
    for key in data:
        if key not in _TABLES and key not in _LISTS:
            allowed = ", ".join([*_TABLES, *(f"[[{k}]]" for k in _LISTS)])
            raise ConfigError(key, data[key], f"unknown table; the tables are {allowed}")
    tables = {name: _build(cls, data.get(name, {}), name, base) for name, cls in _TABLES.items()}
    if base_dir is None:  # no file gives investigation folders a base: the archive will
        investigation = data.get("investigation", {})
        tables["investigation"] = _build(Investigation, investigation, "investigation", Path())
    connections, associations = tables["limits"].max_connections, tables["daemon"].max_associations
    if connections < associations:
        raise ConfigError(
            "limits.max_connections",
            connections,
            f"expected at least [daemon] max_associations ({associations}): every association "
            "needs a connection",
        )
    entries = data.get("trusted", [])
    if not isinstance(entries, list):
        raise ConfigError("trusted", entries, "expected [[trusted]] tables")
    trusted: list[TrustedEntity] = []
    for number, entry in enumerate(entries, start=1):
        entity = _build(TrustedEntity, entry, f"trusted[{number}]", base)
        earlier = next((t for t in trusted if t.ae_title == entity.ae_title), None)
        if earlier is not None:
            raise ConfigError(
                f"trusted[{number}].ae_title",
                entity.ae_title,
                f"AE title already trusted as trusted[{trusted.index(earlier) + 1}]; "
                "each trusted AE title must be unique",
            )
        trusted.append(entity)
    return Config(**tables, trusted=tuple(trusted), faults=_faults(data.get("faults", [])))


def _faults(entries: object) -> tuple[Fault, ...]:
    """``[[faults]]``: each table a rule in :mod:`simdaemon.faults`' vocabulary."""
    if not isinstance(entries, list):
        raise ConfigError("faults", entries, "expected [[faults]] tables")
    rules = []
    for number, entry in enumerate(entries, start=1):
        try:
            rules.append(Fault.from_mapping(entry))
        except FaultError as error:
            value = ABSENT if error.value is None else error.value
            raise ConfigError(f"faults[{number}].{error.key}", value, error.allowed) from None
    return tuple(rules)


def _parse(text: str, where: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(where, ABSENT, f"not valid TOML: {error}") from None


def loads(text: str, base_dir: Path | None = None) -> Config:
    """Parse configuration text; relative paths resolve against ``base_dir`` (default: cwd)."""
    return from_mapping(_parse(text, "(file)"), base_dir)


def read(path: Path) -> dict[str, Any]:
    """Read a configuration file as parsed TOML, not yet checked (to merge overrides into)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), ABSENT, f"cannot read it: {error.strerror}") from None
    return _parse(text, str(path))


def load(path: Path) -> Config:
    """Load a configuration file; relative paths resolve against the file's folder."""
    data = read(path)
    try:
        return from_mapping(data, path.resolve().parent)
    except ConfigError as error:
        raise ConfigError(f"{path}: {error.key}", error.value, error.allowed) from None


# --- rendering ------------------------------------------------------------------------------


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Path):
        return json.dumps(value.as_posix(), ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False)


def _table_lines(header: str, item: Any) -> list[str]:
    lines = [header]
    for f in dataclasses.fields(item):
        assignment = f"{f.name} = {_toml_value(getattr(item, f.name))}"
        lines.append(f"{assignment:<48} # {f.metadata['doc']}")
    return lines


def render(config: Config) -> str:
    """Write ``config`` as commented TOML that :func:`loads` reads back to an equal Config."""
    lines = ["# simdaemon configuration (the DB Daemon's configuration dialog)", ""]
    for name in _TABLES:
        lines += [*_table_lines(f"[{name}]", getattr(config, name)), ""]
    if not config.trusted:
        lines += ["# [[trusted]] tables list the AEs allowed to call; none are trusted here.", ""]
    for entity in config.trusted:
        lines += [*_table_lines("[[trusted]]", entity), ""]
    if config.faults:
        lines += ["# [[faults]] tables inject faults from the start (see simdaemon.faults).", ""]
    for rule in config.faults:
        values = rule.as_mapping()
        lines += ["[[faults]]", *(f"{k} = {_toml_value(v)}" for k, v in values.items()), ""]
    return "\n".join(lines)


def example() -> str:
    """Return the commented example configuration: the defaults plus one trusted client."""
    client = TrustedEntity(ae_title="MYCLIENT", ip="10.130.10.133", port=9999)
    return render(Config(trusted=(client,)))
