"""Patient matching: which stored patient an incoming object belongs to (SPEC section 5 step 3).

Pure rules, no database: the archive hands over the candidate patients, :func:`match` decides.
The decision carries the status to answer, the rule that decided and the values compared, so
the Error Comment, the failed-import reason file and the audit trail all say the same thing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import Enum

from simdaemon import status
from simdaemon.config import PatientCreation, PatientMatching

__all__ = ["CRITERIA", "Demographics", "Match", "MatchKind", "StoredPatient", "match"]

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


class MatchKind(Enum):
    """What the import does with the object's patient."""

    ATTACH = "attach"
    CREATE = "create"
    CONFLICT = "conflict"
    NOT_FOUND = "not-found"
    AMBIGUOUS = "ambiguous"


@dataclass(frozen=True)
class Match:
    """The decision, with everything needed to explain it."""

    kind: MatchKind
    status: int
    rule: str
    explanation: str
    patient: StoredPatient | None = None
    compared: tuple[tuple[str, str, str], ...] = field(default=())

    @property
    def failed(self) -> bool:
        """The object cannot be imported."""
        return self.status != status.SUCCESS


def enabled(criteria: PatientMatching) -> tuple[str, ...]:
    """The criteria switched on in ``[patient_matching]``."""
    return tuple(c for c in CRITERIA if getattr(criteria, c))


def _describe(d: Demographics, criteria: Sequence[str]) -> str:
    shown = ", ".join(f"{_LABELS[c]} '{getattr(d, c)}'" for c in criteria)
    return shown or "(no criteria enabled)"


def _compared(
    incoming: Demographics, stored: StoredPatient | None, criteria: Sequence[str]
) -> tuple[tuple[str, str, str], ...]:
    if stored is None:
        return tuple((c, getattr(incoming, c), "") for c in criteria)
    return tuple((c, getattr(incoming, c), getattr(stored.demographics, c)) for c in criteria)


def match(
    incoming: Demographics,
    candidates: Iterable[StoredPatient],
    matching: PatientMatching,
    creation: PatientCreation,
) -> Match:
    """Decide which stored patient ``incoming`` attaches to, or whether one is created.

    ``candidates`` must include every stored patient that agrees on the enabled criteria and
    every stored patient with the same Patient ID; others are ignored.
    """
    criteria = enabled(matching)
    pool = list(candidates)
    agreeing = [p for p in pool if incoming.agrees(p.demographics, criteria)]
    wanted = _describe(incoming, criteria)
    if len(agreeing) == 1:
        patient = agreeing[0]
        return Match(
            MatchKind.ATTACH,
            status.SUCCESS,
            "patient-matching",
            f"attached to stored patient '{patient.demographics.patient_id}' ({wanted})",
            patient,
            _compared(incoming, patient, criteria),
        )
    if len(agreeing) > 1:
        ids = ", ".join(f"'{p.demographics.patient_id}'" for p in agreeing)
        return Match(
            MatchKind.AMBIGUOUS,
            status.AMBIGUOUS_PATIENT,
            "patient-matching",
            f"{len(agreeing)} stored patients ({ids}) match {wanted}; "
            "enable more [patient_matching] criteria to tell them apart",
            None,
            _compared(incoming, agreeing[0], criteria),
        )
    same_id = next((p for p in pool if p.demographics.patient_id == incoming.patient_id), None)
    if same_id is not None:
        differing = [c for c in criteria if incoming.key(c) != same_id.demographics.key(c)] or list(
            criteria
        )
        stored_values = _describe(same_id.demographics, differing)
        return Match(
            MatchKind.CONFLICT,
            status.PATIENT_CONFLICT,
            "patient-id-unique",
            f"Patient ID '{incoming.patient_id}' belongs to a stored patient with "
            f"{stored_values}, but the object has {_describe(incoming, differing)}; "
            "Patient IDs are unique, so it cannot be a new patient",
            same_id,
            _compared(incoming, same_id, differing),
        )
    if not creation.automatic:
        return Match(
            MatchKind.NOT_FOUND,
            status.NO_MATCHING_PATIENT,
            "patient-creation",
            f"no stored patient matches {wanted} and automatic patient creation is off "
            "([patient_creation] automatic = false)",
            None,
            _compared(incoming, None, criteria),
        )
    stamp = " / ".join(v for v in (creation.hospital, creation.department) if v)
    return Match(
        MatchKind.CREATE,
        status.SUCCESS,
        "patient-creation",
        f"created patient '{incoming.patient_id}' ({wanted})" + (f" in {stamp}" if stamp else ""),
        None,
        _compared(incoming, None, criteria),
    )
