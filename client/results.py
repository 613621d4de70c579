"""Typed C-FIND results: the key fields of each level, and the whole identifier beside them."""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

__all__ = [
    "ImageResult",
    "MoveResult",
    "PatientResult",
    "SeriesResult",
    "StoreResult",
    "StoredObject",
    "StudyResult",
    "text",
    "values",
]


def text(identifier: Dataset, keyword: str) -> str:
    """A key's value as text; ``""`` when absent or empty.

    Multiple values are joined by one backslash, as DICOM writes them (``CT\\RTPLAN``);
    :func:`values` gives them as a list.
    """
    return "\\".join(values(identifier, keyword))


def values(identifier: Dataset, keyword: str) -> list[str]:
    """A key's values as a list of text (``[]`` when absent or empty)."""
    value = identifier.get(keyword)
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(v) for v in value]
    return [str(value)]


@dataclass(frozen=True)
class PatientResult:
    """A patient as the daemon lists it."""

    patient_id: str
    name: str
    birth_date: str
    sex: str
    identifier: Dataset = field(repr=False, compare=False)

    @classmethod
    def of(cls, identifier: Dataset) -> PatientResult:
        return cls(
            text(identifier, "PatientID"),
            text(identifier, "PatientName"),
            text(identifier, "PatientBirthDate"),
            text(identifier, "PatientSex"),
            identifier,
        )


@dataclass(frozen=True)
class StudyResult:
    """A study (an ARIA course; ``study_id`` is the course ID)."""

    study_uid: str
    study_id: str
    date: str
    time: str
    description: str
    patient_id: str
    identifier: Dataset = field(repr=False, compare=False)

    @classmethod
    def of(cls, identifier: Dataset) -> StudyResult:
        return cls(
            text(identifier, "StudyInstanceUID"),
            text(identifier, "StudyID"),
            text(identifier, "StudyDate"),
            text(identifier, "StudyTime"),
            text(identifier, "StudyDescription"),
            text(identifier, "PatientID"),
            identifier,
        )


@dataclass(frozen=True)
class SeriesResult:
    """A series of a study (``study_uid``: the unique key above it)."""

    series_uid: str
    study_uid: str
    modality: str
    number: str
    description: str
    identifier: Dataset = field(repr=False, compare=False)

    @classmethod
    def of(cls, identifier: Dataset) -> SeriesResult:
        return cls(
            text(identifier, "SeriesInstanceUID"),
            text(identifier, "StudyInstanceUID"),
            text(identifier, "Modality"),
            text(identifier, "SeriesNumber"),
            text(identifier, "SeriesDescription"),
            identifier,
        )


@dataclass(frozen=True)
class ImageResult:
    """An instance of a series; modality-specific keys are in ``identifier``.

    ``label`` is the RT Plan Label, Structure Set Label or RT Image Label, whichever the
    object has; ``referenced_plan`` the SOP Instance UID a dose or image references (both
    ``""`` when the server does not return those keys). ``study_uid`` and ``series_uid`` are
    the unique keys above it, which a move or a further query of a hierarchical server needs.
    """

    sop_instance_uid: str
    sop_class_uid: str
    series_uid: str
    study_uid: str
    instance_number: str
    label: str
    referenced_plan: str
    identifier: Dataset = field(repr=False, compare=False)

    @classmethod
    def of(cls, identifier: Dataset) -> ImageResult:
        label = next(
            (text(identifier, k) for k in ("RTPlanLabel", "StructureSetLabel", "RTImageLabel")
             if text(identifier, k)),
            "",
        )  # fmt: skip
        plans = identifier.get("ReferencedRTPlanSequence") or []
        referenced = str(plans[0].get("ReferencedSOPInstanceUID", "")) if len(plans) else ""
        return cls(
            text(identifier, "SOPInstanceUID"),
            text(identifier, "SOPClassUID"),
            text(identifier, "SeriesInstanceUID"),
            text(identifier, "StudyInstanceUID"),
            text(identifier, "InstanceNumber"),
            label,
            referenced,
            identifier,
        )


@dataclass(frozen=True)
class MoveResult:
    """What a C-MOVE did: the final status and sub-operation counts, and what failed."""

    status: int
    completed: int
    failed: int
    warning: int
    failed_uids: tuple[str, ...] = ()
    comment: str = ""

    @property
    def ok(self) -> bool:
        """Every sub-operation completed."""
        return self.status == 0x0000


@dataclass(frozen=True)
class StoredObject:
    """The daemon's answer to one C-STORE."""

    sop_instance_uid: str
    status: int
    comment: str = ""

    @property
    def stored(self) -> bool:
        """Success, or a warning (stored with coercion)."""
        return self.status == 0x0000 or self.status & 0xF000 == 0xB000


@dataclass(frozen=True)
class StoreResult:
    """The answers to a batch of C-STOREs, in the order sent."""

    objects: tuple[StoredObject, ...]

    @property
    def ok(self) -> bool:
        """Every object was stored (warnings included)."""
        return all(o.stored for o in self.objects)

    @property
    def failed(self) -> tuple[StoredObject, ...]:
        """The objects the daemon refused."""
        return tuple(o for o in self.objects if not o.stored)
