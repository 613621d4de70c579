"""Findings: what a client under test did that a real server would punish, as named rules.

A real ARIA daemon is lenient: many client bugs pass there until the day they meet another
PACS, a busier daemon or a patient with an accented name. Each rule here looks at one kind of
request (what the daemon observed, in plain data: no sockets, no archive) and returns a
:class:`Finding` - the rule's name, a severity, the evidence and what to change - or ``None``.
The protocol code gathers the observations and records what the rules say; this module only
judges, so every rule is a small pure function, unit-tested without a network.

Severities, from least to most serious (:class:`Severity`):

``style``
    wasteful or unusual, harmless everywhere;
``portability``
    works against this daemon (and ARIA) but other servers refuse it or answer differently;
``nonconformant``
    breaks a rule of the DICOM standard;
``danger``
    could harm data or pull far more than meant (a whole database).

Each rule's docstring is its documentation: the first line says what it detects, then *Why*
(the server or situation that breaks) and *Fix*; the reference page is generated from them.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum

__all__ = [
    "RULES",
    "AssociationEnd",
    "ChurnWindow",
    "ContextProposal",
    "Finding",
    "MoveFailure",
    "QueryRequest",
    "Rule",
    "Severity",
    "TextValue",
    "abort_instead_of_release",
    "association_per_request_churn",
    "move_destination_is_requester_without_listener",
    "move_universal_unique_key",
    "overlapping_dimse",
    "query_findings",
    "query_matches_ignored_key",
    "query_missing_parent_unique_key",
    "refused_contexts",
    "refused_presentation_context",
    "replaced_or_dropped",
    "store_without_charset_non_ascii",
    "text_charset_mismatch",
    "unused_presentation_contexts",
]


class Severity(IntEnum):
    """How serious a finding is; ordered, so ``finding.severity >= Severity.PORTABILITY``."""

    STYLE = 1
    PORTABILITY = 2
    NONCONFORMANT = 3
    DANGER = 4

    @classmethod
    def parse(cls, name: str) -> Severity:
        """``"portability"`` -> :attr:`PORTABILITY`; :class:`ValueError` names the choices."""
        try:
            return cls[name.strip().upper()]
        except KeyError:
            allowed = ", ".join(s.name.lower() for s in cls)
            raise ValueError(f"{name!r} is not a severity; one of {allowed}") from None

    def __str__(self) -> str:
        return self.name.lower()


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one request: evidence in words, and what to change."""

    rule: str
    severity: Severity
    evidence: str
    fix: str

    def sentence(self) -> str:
        """The finding in one line, as the log and the Error Comment's source say it."""
        return f"{self.rule} ({self.severity}): {self.evidence}; fix: {self.fix}"


# --- queries and moves --------------------------------------------------------------------

#: Each level's unique key (PS3.4 C.6.1.1 / C.6.2.1).
UNIQUE_KEYS = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
_LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
_WILD = re.compile(r"[*?]")


@dataclass(frozen=True)
class QueryRequest:
    """A C-FIND or C-MOVE identifier as the daemon received it.

    ``keys`` maps each keyword present in the identifier to its value as sent (``""`` for a
    zero-length element); ``model`` is ``"patient"`` or ``"study"`` (the information model
    of the presentation context); ``ignored`` the keys the daemon does not match on.
    """

    operation: str
    model: str
    level: str
    keys: Mapping[str, str]
    ignored: Sequence[str] = ()
    #: For a C-MOVE: what the identifier would move, in words ("3 patients, 78 objects").
    would_move: str = ""


def _names_one(value: str | None) -> bool:
    """Whether a unique key's value names objects: present, non-empty, no wildcard."""
    return bool(value) and not _WILD.search(value or "")


def move_universal_unique_key(request: QueryRequest) -> Finding | None:
    """A C-MOVE whose level's unique key is empty, absent or a wildcard.

    *Why*: PS3.4 C.4.2.2.1 allows only single values or UID lists in a C-MOVE's unique
    keys; an empty value is universal matching. ARIA and dcmqrscp then move everything that
    matches - one call pulls every patient of a study, or the whole database.
    *Fix*: name what to move by the unique keys of its level and every level above, taken
    from a C-FIND's results.
    """
    if request.operation != "move" or request.level not in UNIQUE_KEYS:
        return None
    keyword = UNIQUE_KEYS[request.level]
    value = request.keys.get(keyword)
    if _names_one(value):
        return None
    how = "absent" if value is None else "empty" if value == "" else f"the wildcard '{value}'"
    moved = f"; it would move {request.would_move}" if request.would_move else ""
    return Finding(
        "move-universal-unique-key",
        Severity.DANGER,
        f"C-MOVE at {request.level} level with {keyword} {how}{moved}",
        f"send the {keyword} of exactly what to move (from a C-FIND), never empty or wild",
    )


def query_missing_parent_unique_key(request: QueryRequest) -> Finding | None:
    """A hierarchical C-FIND or C-MOVE below the top level without the unique keys above it.

    *Why*: PS3.4 C.4.1.2.2.1 (C-FIND) and C.4.2.2.1 (C-MOVE) say a hierarchical request
    carries one value for the unique key of each level above the one asked for. ARIA answers
    without them; DCMTK's dcmqrscp and others refuse the request or answer nothing.
    *Fix*: add the parent levels' unique keys (StudyInstanceUID for SERIES, and
    SeriesInstanceUID for IMAGE; PatientID too under the Patient Root model).
    """
    if request.level not in _LEVELS:
        return None
    top = 0 if request.model == "patient" else 1
    above = _LEVELS[top : _LEVELS.index(request.level)]
    missing = [
        UNIQUE_KEYS[level]
        for level in above
        if not _names_one(request.keys.get(UNIQUE_KEYS[level]))
    ]
    if not missing:
        return None
    what = "C-FIND" if request.operation == "find" else "C-MOVE"
    return Finding(
        "query-missing-parent-unique-key",
        Severity.PORTABILITY,
        f"{what} at {request.level} level without {' and '.join(missing)} ({request.model} root)",
        f"send {', '.join(missing)} with one value each, taken from the level above's results",
    )


def query_matches_ignored_key(request: QueryRequest) -> Finding | None:
    """A matching value on a key this daemon ignores but other servers match on.

    *Why*: the real daemon matches on a fixed set of keys and returns the rest; a value on
    another key (NumberOfBeams "0", a series' BodyPartExamined) changes nothing here, but
    Orthanc, dcmqrscp and PACS that match on it return fewer results, or none.
    *Fix*: send such keys empty (as return keys) and filter the results in the client.
    """
    valued = [key for key in request.ignored if request.keys.get(key)]
    if not valued:
        return None
    shown = ", ".join(f"{key}='{request.keys[key][:32]}'" for key in valued)
    return Finding(
        "query-matches-ignored-key",
        Severity.PORTABILITY,
        f"matching value on key(s) the daemon ignores: {shown}",
        "send these keys empty and filter the results yourself",
    )


# --- text and character sets ----------------------------------------------------------------


@dataclass(frozen=True)
class TextValue:
    """One text value of a stored object, as received and as the archive already knows it.

    ``declared`` are the object's Specific Character Set terms (empty: none sent); ``valid``
    whether the bytes decoded cleanly in them; ``text`` the decoded value; ``stored`` the
    same element of the patient the archive holds (``""`` when there is none to compare).
    """

    keyword: str
    declared: Sequence[str]
    valid: bool
    text: str
    stored: str = ""
    non_ascii: bool = False


def replaced_or_dropped(incoming: str, stored: str) -> bool:
    """Whether ``incoming`` is ``stored`` with some non-ASCII characters replaced or dropped.

    What an encoder does to characters its character set lacks: ``Léon`` -> ``L?on`` or
    ``Lon``. At least one character must differ, and only non-ASCII ones.
    """
    if incoming == stored:
        return False
    i = 0
    changed = False
    for char in stored:
        if i < len(incoming) and incoming[i] == char:
            i += 1
        elif ord(char) > 0x7F:
            changed = True
            if i < len(incoming) and incoming[i] == "?":
                i += 1
        else:
            return False
    return changed and i == len(incoming)


def text_charset_mismatch(value: TextValue) -> Finding | None:
    """Text that is not valid in its declared character set, or lost characters on the way.

    *Why*: PS3.5 6.1.2.5 - text must be encoded in the Specific Character Set (0008,0005) the
    object declares. Some clients re-encode every object in a fixed character set whatever
    the object says (Evil DICOM writes Shift_JIS: ``Léon`` arrives as ``Lon``); ARIA then
    finds no matching patient (0xC002) or files a second one.
    *Fix*: encode text in the character set the object declares (or declare the one used),
    and keep names as they came from the daemon.
    """
    if not value.valid:
        declared = "\\".join(value.declared) or "none (ISO_IR 6)"
        return Finding(
            "text-charset-mismatch",
            Severity.NONCONFORMANT,
            f"{value.keyword} is not valid text in its declared character set {declared}",
            "encode text in the declared Specific Character Set, or declare the one used",
        )
    if value.stored and replaced_or_dropped(value.text, value.stored):
        return Finding(
            "text-charset-mismatch",
            Severity.NONCONFORMANT,
            f"{value.keyword} '{value.text}' is the archive's '{value.stored}' with characters "
            "replaced by '?' or dropped: re-encoded in a character set that lacks them",
            "send text in the character set the object declares, unchanged from the daemon's",
        )
    return None


def store_without_charset_non_ascii(value: TextValue) -> Finding | None:
    """Non-ASCII bytes in an object with no Specific Character Set.

    *Why*: PS3.5 6.1.2.3 - without (0008,0005) text is the default repertoire (ISO-IR 6,
    ASCII). ARIA guesses with the trusted entity's import character set; another server
    guesses differently, or refuses, and names arrive garbled.
    *Fix*: declare the character set the text is written in (ISO_IR 192 for UTF-8).
    """
    if value.declared or not value.non_ascii:
        return None
    return Finding(
        "store-without-charset-non-ascii",
        Severity.NONCONFORMANT,
        f"{value.keyword} has non-ASCII bytes and the object has no Specific Character Set",
        "declare (0008,0005) Specific Character Set, e.g. ISO_IR 192 for UTF-8",
    )


# --- associations ---------------------------------------------------------------------------


def overlapping_dimse(pending: int, async_window: int = 1) -> Finding | None:
    """A new request on an association while another is still pending.

    *Why*: PS3.7 D.3.3.3 - without an Asynchronous Operations Window negotiated, one request
    may be outstanding at a time. Nested C-FINDs on one association (a query per result of
    another) work on lenient servers and deadlock or abort on others.
    *Fix*: read every response of a request before sending the next, or use a second
    association.
    """
    if pending < async_window:
        return None
    return Finding(
        "overlapping-dimse",
        Severity.NONCONFORMANT,
        f"a request arrived while {pending} other(s) were pending; {async_window} allowed",
        "wait for the final response before the next request, or open another association",
    )


@dataclass(frozen=True)
class AssociationEnd:
    """How an association ended, and what it was used for."""

    aborted_by_peer: bool
    requests: int
    accepted_contexts: Sequence[str] = ()
    used_contexts: Sequence[str] = ()


def abort_instead_of_release(end: AssociationEnd) -> Finding | None:
    """A client that ends a finished association with A-ABORT instead of A-RELEASE.

    *Why*: PS3.8 7.3 - A-ABORT is for failures; ARIA logs every abort as an error, and
    servers may discard what the association did last. A script that always aborts fills
    the daemon's error log and hides real failures.
    *Fix*: call release() when done; abort only on failure.
    """
    if not end.aborted_by_peer or end.requests == 0:
        return None
    return Finding(
        "abort-instead-of-release",
        Severity.STYLE,
        f"the client aborted the association after {end.requests} completed request(s)",
        "end associations with A-RELEASE (release()); abort only on failure",
    )


def unused_presentation_contexts(end: AssociationEnd) -> Finding | None:
    """Presentation contexts proposed, accepted and never used.

    *Why*: each accepted context costs negotiation and, on some servers, a slot of a small
    limit (128 per association, PS3.8 9.3.2.2); proposing every storage class for one
    C-ECHO is slow against servers that check each one.
    *Fix*: propose only the SOP classes the association will use.
    """
    if end.requests == 0:
        return None
    unused = sorted(set(end.accepted_contexts) - set(end.used_contexts))
    if not unused:
        return None
    shown = ", ".join(unused[:3]) + (f" and {len(unused) - 3} more" if len(unused) > 3 else "")
    return Finding(
        "unused-presentation-contexts",
        Severity.STYLE,
        f"{len(unused)} accepted presentation context(s) never used: {shown}",
        "propose only the SOP classes the association uses",
    )


@dataclass
class ChurnWindow:
    """Associations per calling AE over the last second, for the churn rule (time passed in)."""

    limit: int
    window_s: float = 1.0
    _opened: dict[str, deque[float]] = field(default_factory=dict)

    def opened(self, calling_ae: str, now: float) -> int:
        """Count an association from ``calling_ae`` at ``now``; return how many in the window."""
        times = self._opened.setdefault(calling_ae, deque())
        times.append(now)
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(self._opened) > 1024:  # bounded: forget the quietest callers
            for quiet in [ae for ae, t in self._opened.items() if len(t) <= 1][:512]:
                del self._opened[quiet]
        return len(times)


def association_per_request_churn(calling_ae: str, in_window: int, limit: int) -> Finding | None:
    """More than N associations per second from one AE: one association per request.

    *Why*: each association costs a TCP handshake, negotiation and, on ARIA, a slot of the
    daemon's association limit; a script opening one per C-FIND is refused (busy) under load
    and slow everywhere.
    *Fix*: keep one association open for a batch of requests.
    """
    if in_window <= limit:
        return None
    return Finding(
        "association-per-request-churn",
        Severity.STYLE,
        f"'{calling_ae}' opened {in_window} associations within a second (more than {limit})",
        "reuse one association for a batch of requests",
    )


@dataclass(frozen=True)
class ContextProposal:
    """A presentation context the client proposed and the daemon refused, and why."""

    abstract_syntax: str
    name: str
    transfer_syntaxes: Sequence[str]
    #: "abstract-syntax" (the SOP class is not served) or "transfer-syntax" (none acceptable).
    refused_for: str


_GET_CLASSES = re.compile(r"^1\.2\.840\.10008\.5\.1\.4\.1\.2\.\d\.3$")


def refused_presentation_context(proposal: ContextProposal) -> Finding | None:
    """A proposed presentation context the daemon refused: C-GET, big endian, unknown class.

    *Why*: the association is accepted without it, so the client learns only when it sends
    a request on it ("no accepted presentation context"), far from the cause. The real
    daemon has no C-GET and speaks only little endian.
    *Fix*: per the evidence - use C-MOVE to a trusted entity instead of C-GET; propose
    Explicit or Implicit VR Little Endian; propose only SOP classes the daemon serves.
    """
    if proposal.refused_for == "transfer-syntax":
        return Finding(
            "refused-presentation-context",
            Severity.PORTABILITY,
            f"{proposal.name} refused: none of {', '.join(proposal.transfer_syntaxes)} "
            "is acceptable",
            "propose Explicit or Implicit VR Little Endian",
        )
    if _GET_CLASSES.match(proposal.abstract_syntax):
        fix = "the daemon has no C-GET; use C-MOVE to a trusted entity"
    else:
        fix = "propose only the SOP classes the daemon serves (storage, Q/R FIND and MOVE)"
    return Finding(
        "refused-presentation-context",
        Severity.PORTABILITY,
        f"{proposal.name} ({proposal.abstract_syntax}) refused: not served by the daemon",
        fix,
    )


_STORAGE = "1.2.840.10008.5.1.4.1.1."


def refused_contexts(proposals: Sequence[ContextProposal]) -> list[Finding]:
    """The refused-presentation-context findings of one association, without the noise.

    One finding per refused SOP class (a client proposes some twice, with different transfer
    syntaxes); storage classes the daemon does not store are summed up in one ``style``
    finding, since tools such as DCMTK's storescu propose every storage class they know and
    use only those their files need. The caller leaves out classes accepted in another
    context.
    """
    unique = list({p.abstract_syntax: p for p in proposals}.values())
    storage = [
        p
        for p in unique
        if p.refused_for == "abstract-syntax" and p.abstract_syntax.startswith(_STORAGE)
    ]
    found = [f for p in unique if p not in storage and (f := refused_presentation_context(p))]
    if storage:
        names = sorted(p.name for p in storage)
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        found.append(
            Finding(
                "refused-presentation-context",
                Severity.STYLE,
                f"{len(names)} storage SOP class(es) the daemon does not store refused: {shown}",
                "propose only the SOP classes of the objects to send (storescu: -R)",
            )
        )
    return found


@dataclass(frozen=True)
class MoveFailure:
    """A C-MOVE sub-operation association that could not be opened."""

    calling_ae: str
    destination_ae: str
    address: str
    refused: bool


def move_destination_is_requester_without_listener(failure: MoveFailure) -> Finding | None:
    """A C-MOVE to the requester itself, whose storage port is closed (0xA702 follows).

    *Why*: a C-MOVE is answered by C-STOREs on a new association to the destination's port;
    a first script often moves to its own AE title without starting a storage SCP there.
    ARIA answers 0xA702 and says nothing more.
    *Fix*: start a storage SCP on the port the daemon's trusted entity lists for this AE
    before sending the C-MOVE (the client's retrieve() does this).
    """
    if not failure.refused or failure.calling_ae != failure.destination_ae:
        return None
    return Finding(
        "move-destination-is-requester-without-listener",
        Severity.PORTABILITY,
        f"C-MOVE to '{failure.destination_ae}', the requester itself, but nothing listens "
        f"on {failure.address}",
        f"listen on {failure.address} (a storage SCP) before the C-MOVE",
    )


# --- the registry ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """A rule's name, the most serious severity it gives, and its function."""

    name: str
    severity: Severity
    check: Callable[..., Finding | None]

    @property
    def doc(self) -> str:
        """The rule's documentation: its function's docstring."""
        return (self.check.__doc__ or "").strip()


def _rules(*entries: tuple[str, Severity, Callable[..., Finding | None]]) -> dict[str, Rule]:
    return {name: Rule(name, severity, check) for name, severity, check in entries}


#: Every rule, by name, in the order the reference lists them.
RULES: Mapping[str, Rule] = _rules(
    ("move-universal-unique-key", Severity.DANGER, move_universal_unique_key),
    ("query-missing-parent-unique-key", Severity.PORTABILITY, query_missing_parent_unique_key),
    ("query-matches-ignored-key", Severity.PORTABILITY, query_matches_ignored_key),
    ("text-charset-mismatch", Severity.NONCONFORMANT, text_charset_mismatch),
    ("store-without-charset-non-ascii", Severity.NONCONFORMANT, store_without_charset_non_ascii),
    ("overlapping-dimse", Severity.NONCONFORMANT, overlapping_dimse),
    ("abort-instead-of-release", Severity.STYLE, abort_instead_of_release),
    ("association-per-request-churn", Severity.STYLE, association_per_request_churn),
    ("unused-presentation-contexts", Severity.STYLE, unused_presentation_contexts),
    ("refused-presentation-context", Severity.PORTABILITY, refused_presentation_context),
    (
        "move-destination-is-requester-without-listener",
        Severity.PORTABILITY,
        move_destination_is_requester_without_listener,
    ),
)


def query_findings(request: QueryRequest) -> list[Finding]:
    """Every query rule's finding on one C-FIND or C-MOVE identifier."""
    checks: Iterable[Callable[[QueryRequest], Finding | None]] = (
        move_universal_unique_key,
        query_missing_parent_unique_key,
        query_matches_ignored_key,
    )
    return [finding for check in checks if (finding := check(request)) is not None]
