"""Step 1 of an import: is this object complete enough to file (SPEC section 5)?

Pure checks on a decoded data set. UIDs must be digits and dots, at most 64 characters, with
no empty component: besides being the standard's rule, that is what makes a UID safe to use
as a file name (``..`` and ``../../etc`` cannot pass).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

from simdaemon.attributes import text_value

__all__ = ["Problem", "is_valid_uid", "validate"]

_UID = re.compile(r"\d+(?:\.\d+)*")
#: Longest Patient ID the LO value representation allows.
MAX_PATIENT_ID = 64

_REQUIRED_UIDS = (
    ("SOPClassUID", "(0008,0016)", "SOP Class UID"),
    ("SOPInstanceUID", "(0008,0018)", "SOP Instance UID"),
    ("StudyInstanceUID", "(0020,000D)", "Study Instance UID"),
    ("SeriesInstanceUID", "(0020,000E)", "Series Instance UID"),
)


@dataclass(frozen=True)
class Problem:
    """Why an object is refused: a short comment for the DIMSE answer and the full story."""

    rule: str
    comment: str
    detail: str


def is_valid_uid(value: str) -> bool:
    """Digits and dots, no empty component, 1 to 64 characters."""
    return 0 < len(value) <= 64 and _UID.fullmatch(value) is not None


def validate(
    dataset: Dataset, *, sop_class_uid: str = "", sop_instance_uid: str = ""
) -> Problem | None:
    """Return what makes ``dataset`` unfit to import, or ``None``.

    ``sop_class_uid``/``sop_instance_uid`` are the Affected SOP Class/Instance UIDs of the
    C-STORE request, which must name the same object as the data set.
    """
    for keyword, tag, words in _REQUIRED_UIDS:
        value = text_value(dataset, keyword)
        if not value:
            return Problem(
                "required-attribute",
                f"missing {words} {tag}",
                f"the object has no {words} {tag}; every stored object needs one",
            )
        if not is_valid_uid(value):
            shown = value if len(value) <= 80 else f"{value[:77]}..."
            return Problem(
                "uid-syntax",
                f"invalid {words} {tag}",
                f"{words} {tag} '{shown}' is not a valid UID: "
                "expected digits and dots, no empty component, at most 64 characters",
            )
    patient_id = text_value(dataset, "PatientID")
    if not patient_id:
        return Problem(
            "required-attribute",
            "missing Patient ID (0010,0020)",
            "the object has no Patient ID (0010,0020); the daemon files objects by patient",
        )
    if len(patient_id) > MAX_PATIENT_ID:
        return Problem(
            "value-length",
            f"Patient ID has {len(patient_id)} chars, at most 64 allowed",
            f"Patient ID (0010,0020) is {len(patient_id)} characters long; "
            f"the LO value representation allows at most {MAX_PATIENT_ID}",
        )
    for keyword, expected, words in (
        ("SOPClassUID", sop_class_uid, "Affected SOP Class UID"),
        ("SOPInstanceUID", sop_instance_uid, "Affected SOP Instance UID"),
    ):
        actual = text_value(dataset, keyword)
        if expected and actual != expected:
            return Problem(
                "request-mismatch",
                f"{keyword} differs from the request's",
                f"the data set's {keyword} '{actual}' differs from the C-STORE request's "
                f"{words} '{expected}'",
            )
    return None
