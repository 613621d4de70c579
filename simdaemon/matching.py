"""Placement: where an incoming object goes in the archive, or why it goes nowhere.

SPEC section 5 steps 3 and 4, and the archive's hierarchy: which stored patient the object
attaches to (or whether one is created), what happens to a stored object with the same SOP
Instance UID, and whether the stored study and series it names are its own.

Pure rules, no database: the archive reads :class:`Candidates` (what it holds that the object
could attach to) and :func:`place` decides; the archive then writes what the decision says.
Every decision carries the rule that decided and an explanation, and a refusal the status and
the Error Comment, so the answer, the failed-import reason file and the audit trail all say
the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from simdaemon import status
from simdaemon.config import Config, PatientCreation, PatientMatching

__all__ = [
    "CRITERIA",
    "Ambiguous",
    "Attach",
    "Candidates",
    "Conflict",
    "Create",
    "Demographics",
    "Incoming",
    "Keep",
    "NotFound",
    "Placement",
    "Refusal",
    "Rules",
    "StoredInstance",
    "StoredPatient",
    "StoredSeries",
    "StoredStudy",
    "place",
]

#: The matching switches, in the order the configuration dialog lists them.
CRITERIA = ("patient_id", "patient_id2", "last_name", "first_name", "birth_date")
_LABELS = {
    "patient_id": "Patient ID",
    "patient_id2": "Patient ID 2",
    "last_name": "last name",
    "first_name": "first name",
    "birth_date": "birth date",
}


def _name_key(value: str) -> str:
    return value.strip().casefold()


@dataclass(frozen=True)
class Demographics:
    """The patient attributes an object carries, as the matcher compares them."""

    patient_id: str
    patient_id2: str = ""
    last_name: str = ""
    first_name: str = ""
    birth_date: str = ""

    @classmethod
    def from_values(
        cls, patient_id: str, other_ids: Sequence[str], name: str, birth_date: str
    ) -> Demographics:
        """Build from the raw attribute values: ID, Other Patient IDs, PN and birth date."""
        alphabetic = name.split("=")[0]
        components = [*alphabetic.split("^"), "", ""]
        return cls(
            patient_id=patient_id.strip(),
            patient_id2=(other_ids[0] if other_ids else "").strip(),
            last_name=components[0].strip(),
            first_name=components[1].strip(),
            birth_date=birth_date.strip(),
        )

    def key(self, criterion: str) -> str:
        """The value compared for ``criterion``: names case-folded, the rest trimmed."""
        value: str = getattr(self, criterion)
        return _name_key(value) if criterion in ("last_name", "first_name") else value

    def agrees(self, other: Demographics, criteria: Iterable[str]) -> bool:
        """Whether both agree on every one of ``criteria``."""
        return all(self.key(c) == other.key(c) for c in criteria)


@dataclass(frozen=True)
class StoredPatient:
    """A patient already in the archive: its row key and its demographics."""

    key: int
    demographics: Demographics


@dataclass(frozen=True)
class StoredStudy:
    """A study already in the archive and the patient it is filed under."""

    key: int
    patient: int
    patient_id: str


@dataclass(frozen=True)
class StoredSeries:
    """A series already in the archive and the study it is filed under."""

    key: int
    study: int
    study_uid: str


@dataclass(frozen=True)
class StoredInstance:
    """An object already in the archive under the incoming SOP Instance UID."""

    key: int
    file: Path


@dataclass(frozen=True)
class Candidates:
    """What the archive holds that an incoming object could attach to.

    The archive must supply, as they are before the object is stored:

    - ``patients``: every stored patient that agrees with the object on each enabled criterion
      (compared as :meth:`Demographics.key` gives them), and every stored patient with the
      object's Patient ID; other patients are ignored;
    - ``study``, ``series``, ``duplicate``: the stored study, series and object with the
      object's Study, Series and SOP Instance UID, if any.
    """

    patients: tuple[StoredPatient, ...] = ()
    study: StoredStudy | None = None
    series: StoredSeries | None = None
    duplicate: StoredInstance | None = None


@dataclass(frozen=True)
class Incoming:
    """Where an object says it belongs: its patient's demographics and its UIDs."""

    demographics: Demographics
    study_uid: str
    series_uid: str
    sop_instance_uid: str


@dataclass(frozen=True)
class Rules:
    """The configuration :func:`place` applies."""

    matching: PatientMatching = field(default_factory=PatientMatching)
    creation: PatientCreation = field(default_factory=PatientCreation)
    #: ``[storage] on_duplicate``: "reject", "overwrite" or "ignore".
    on_duplicate: str = "reject"

    @classmethod
    def from_config(cls, config: Config) -> Rules:
        """The placement rules of a whole configuration."""
        return cls(config.patient_matching, config.patient_creation, config.storage.on_duplicate)

    @property
    def criteria(self) -> tuple[str, ...]:
        """The criteria switched on in ``[patient_matching]``, in :data:`CRITERIA` order."""
        return enabled(self.matching)


Compared = tuple[tuple[str, str, str], ...]


@dataclass(frozen=True)
class Attach:
    """Store under a stored patient.

    ``study`` and ``series`` are the stored ones the object joins, or ``None`` where the
    object's study or series is new and is created; ``replaces`` is the stored object with the
    same SOP Instance UID that the object replaces (``on_duplicate = "overwrite"``).
    """

    patient: StoredPatient
    explanation: str
    compared: Compared = ()
    study: StoredStudy | None = None
    series: StoredSeries | None = None
    replaces: StoredInstance | None = None
    rule: str = "patient-matching"


@dataclass(frozen=True)
class Create:
    """Create the patient, stamped with hospital and department, then its study and series.

    A new patient owns no stored study or series, so both are always created.
    """

    hospital: str
    department: str
    explanation: str
    compared: Compared = ()
    replaces: StoredInstance | None = None
    rule: str = "patient-creation"


@dataclass(frozen=True)
class Keep:
    """The archive already holds the object and keeps its copy; nothing is written."""

    explanation: str
    rule: str = "on-duplicate"


@dataclass(frozen=True)
class Refusal:
    """The object cannot be stored: the status, the Error Comment and the whole explanation.

    ``comment`` is the short reason for the Error Comment; ``compared`` lists the values
    compared, as (criterion, object's value, stored patient's value), for the reason file.
    """

    status: int
    rule: str
    comment: str
    explanation: str
    compared: Compared = ()


@dataclass(frozen=True)
class Conflict(Refusal):
    """The object contradicts the archive: its Patient ID, SOP UID, study or series is taken."""


@dataclass(frozen=True)
class Ambiguous(Refusal):
    """More than one stored patient agrees with the object (0xC003)."""


@dataclass(frozen=True)
class NotFound(Refusal):
    """No stored patient agrees and automatic creation is off (0xC001)."""


Placement = Attach | Create | Keep | Conflict | Ambiguous | NotFound


def enabled(criteria: PatientMatching) -> tuple[str, ...]:
    """The criteria switched on in ``[patient_matching]``."""
    return tuple(c for c in CRITERIA if getattr(criteria, c))


def _describe(d: Demographics, criteria: Sequence[str]) -> str:
    shown = ", ".join(f"{_LABELS[c]} '{getattr(d, c)}'" for c in criteria)
    return shown or "(no criteria enabled)"


def _compared(
    incoming: Demographics, stored: StoredPatient | None, criteria: Sequence[str]
) -> Compared:
    if stored is None:
        return tuple((c, getattr(incoming, c), "") for c in criteria)
    return tuple((c, getattr(incoming, c), getattr(stored.demographics, c)) for c in criteria)


def place(candidates: Candidates, incoming: Incoming, rules: Rules) -> Placement:
    """Decide where ``incoming`` goes in the archive, or why it cannot be stored.

    The rules apply in this order and the first that refuses answers, because the status
    depends on the order when several apply:

    1. the patient (SPEC section 5 step 3): attach to the one stored patient that agrees on
       every enabled criterion, or create one; 0xC003 when several agree, 0xC002 when none
       does but one has the Patient ID, 0xC001 when none does and creation is off;
    2. a stored object with the same SOP Instance UID (step 4): refuse it (0xC004), keep the
       stored copy, or replace it, as ``on_duplicate`` says;
    3. a stored study stays with its patient: 0xC002 when it is filed under another one;
    4. a stored series stays with its study: 0xA900 when it is filed under another one.
    """
    decision = _patient(incoming.demographics, candidates.patients, rules)
    if isinstance(decision, Refusal):
        return decision
    explanation, replaces = decision.explanation, candidates.duplicate
    if replaces is not None:
        if rules.on_duplicate == "reject":
            return Conflict(
                status.DUPLICATE_INSTANCE,
                "on-duplicate",
                "SOP Instance UID already archived",
                f"SOP Instance UID {incoming.sop_instance_uid} is already in the archive and "
                '[storage] on_duplicate = "reject"',
            )
        if rules.on_duplicate == "ignore":
            return Keep(
                f"SOP Instance UID {incoming.sop_instance_uid} is already in the archive; kept "
                'the stored copy ([storage] on_duplicate = "ignore")'
            )
        explanation += '; replaced the stored copy ([storage] on_duplicate = "overwrite")'
    patient = decision.patient.key if isinstance(decision, Attach) else None
    study = candidates.study
    if study is not None and study.patient != patient:
        return Conflict(
            status.PATIENT_CONFLICT,
            "study-patient",
            "Study Instance UID belongs to another patient",
            f"Study Instance UID {incoming.study_uid} is filed under patient "
            f"'{study.patient_id}', not under the object's patient "
            f"'{incoming.demographics.patient_id}'",
        )
    series = candidates.series
    if series is not None and (study is None or series.study != study.key):
        return Conflict(
            status.INVALID_OBJECT,
            "series-study",
            "Series Instance UID belongs to another study",
            f"Series Instance UID {incoming.series_uid} is filed under study "
            f"{series.study_uid}, not under the object's study {incoming.study_uid}",
        )
    if isinstance(decision, Attach):
        return Attach(decision.patient, explanation, decision.compared, study, series, replaces)
    return Create(decision.hospital, decision.department, explanation, decision.compared, replaces)


def _patient(
    incoming: Demographics, candidates: Iterable[StoredPatient], rules: Rules
) -> Attach | Create | Conflict | Ambiguous | NotFound:
    """Which stored patient ``incoming`` attaches to, or whether one is created (step 3)."""
    criteria = rules.criteria
    creation = rules.creation
    pool = list(candidates)
    agreeing = [p for p in pool if incoming.agrees(p.demographics, criteria)]
    wanted = _describe(incoming, criteria)
    if len(agreeing) == 1:
        patient = agreeing[0]
        return Attach(
            patient,
            f"attached to stored patient '{patient.demographics.patient_id}' ({wanted})",
            _compared(incoming, patient, criteria),
        )
    if len(agreeing) > 1:
        ids = ", ".join(f"'{p.demographics.patient_id}'" for p in agreeing)
        return Ambiguous(
            status.AMBIGUOUS_PATIENT,
            "patient-matching",
            "more than one stored patient matches",
            f"{len(agreeing)} stored patients ({ids}) match {wanted}; "
            "enable more [patient_matching] criteria to tell them apart",
            _compared(incoming, agreeing[0], criteria),
        )
    same_id = next((p for p in pool if p.demographics.patient_id == incoming.patient_id), None)
    if same_id is not None:
        differing = [c for c in criteria if incoming.key(c) != same_id.demographics.key(c)] or list(
            criteria
        )
        stored_values = _describe(same_id.demographics, differing)
        return Conflict(
            status.PATIENT_CONFLICT,
            "patient-id-unique",
            "Patient ID conflict: "
            + ", ".join(name.replace("_", " ") for name in differing)
            + " differ",
            f"Patient ID '{incoming.patient_id}' belongs to a stored patient with "
            f"{stored_values}, but the object has {_describe(incoming, differing)}; "
            "Patient IDs are unique, so it cannot be a new patient",
            _compared(incoming, same_id, differing),
        )
    if not creation.automatic:
        return NotFound(
            status.NO_MATCHING_PATIENT,
            "patient-creation",
            "no matching patient; automatic creation is off",
            f"no stored patient matches {wanted} and automatic patient creation is off "
            "([patient_creation] automatic = false)",
            _compared(incoming, None, criteria),
        )
    stamp = " / ".join(v for v in (creation.hospital, creation.department) if v)
    return Create(
        creation.hospital,
        creation.department,
        f"created patient '{incoming.patient_id}' ({wanted})" + (f" in {stamp}" if stamp else ""),
        _compared(incoming, None, criteria),
    )
