"""Step 1 of an import: is this object complete enough to file (SPEC section 5)?

Pure checks on a decoded data set. UIDs follow PS3.5 9.1: ASCII digits and dots only, at
most 64 characters, no empty component, no leading zero in a component other than "0".
Besides being the standard's rule, that is what makes a UID safe to use as a file name
(``..`` and ``../../etc`` cannot pass) and a folder every query can still match: ``\\d``
would have let fullwidth digits (U+FF11 ...) through. The keys the daemon files and matches
patients by may not hold control characters: a newline in a Patient ID forged log lines, a
NUL cut it short in other tools. The SOP Class must be the presentation context's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.dataset import Dataset

from simdaemon.attributes import text_value
from simdaemon.printable import CONTROL, printable

__all__ = ["Problem", "is_valid_uid", "validate"]

_UID = re.compile(r"(?:0|[1-9][0-9]*)(?:\.(?:0|[1-9][0-9]*))*", re.ASCII)
#: Longest Patient ID the LO value representation allows.
MAX_PATIENT_ID = 64

_REQUIRED_UIDS = (
    ("SOPClassUID", "(0008,0016)", "SOP Class UID"),
    ("SOPInstanceUID", "(0008,0018)", "SOP Instance UID"),
    ("StudyInstanceUID", "(0020,000D)", "Study Instance UID"),
    ("SeriesInstanceUID", "(0020,000E)", "Series Instance UID"),
)
#: The text keys patients are filed and matched by (SPEC section 5 step 3).
_IDENTIFYING = (
    ("PatientID", "(0010,0020)", "Patient ID"),
    ("PatientName", "(0010,0010)", "Patient's Name"),
    ("OtherPatientIDs", "(0010,1000)", "Other Patient IDs"),
    ("PatientBirthDate", "(0010,0030)", "Patient's Birth Date"),
)


@dataclass(frozen=True)
class Problem:
    """Why an object is refused: a short comment for the DIMSE answer and the full story."""

    rule: str
    comment: str
    detail: str


def is_valid_uid(value: str) -> bool:
    """ASCII digits and dots, 1 to 64 characters; no empty component, no leading zero."""
    return 0 < len(value) <= 64 and _UID.fullmatch(value) is not None


def validate(
    dataset: Dataset,
    *,
    sop_class_uid: str = "",
    sop_instance_uid: str = "",
    context_sop_class: str = "",
) -> Problem | None:
    """Return what makes ``dataset`` unfit to import, or ``None``.

    ``sop_class_uid``/``sop_instance_uid`` are the Affected SOP Class/Instance UIDs of the
    C-STORE request, which must name the same object as the data set; ``context_sop_class``
    is the abstract syntax of the presentation context it came on ("" for a local import).
    Text is checked decoded, so ISO 2022 escape sequences are no longer in it.
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
                f"{words} {tag} '{printable(shown)}' is not a valid UID: expected ASCII digits "
                "and dots, no empty component, no leading zero, at most 64 characters",
            )
    problem = _context_mismatch(dataset, context_sop_class) or _control_characters(dataset)
    if problem is not None:
        return problem
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
                f"the data set's {keyword} '{printable(actual)}' differs from the C-STORE "
                f"request's {words} '{printable(expected)}'",
            )
    return None


def _context_mismatch(dataset: Dataset, context_sop_class: str) -> Problem | None:
    """The data set's SOP Class differs from the presentation context's abstract syntax."""
    actual = text_value(dataset, "SOPClassUID")
    if not context_sop_class or actual == context_sop_class:
        return None
    return Problem(
        "context-mismatch",
        "SOP Class UID (0008,0016) is not the context's abstract syntax",
        f"the data set's SOP Class UID (0008,0016) '{actual}' differs from the abstract "
        f"syntax '{context_sop_class}' of the presentation context it was sent on; send it "
        "on a context for its own SOP class",
    )


def _control_characters(dataset: Dataset) -> Problem | None:
    """A control character (NUL, newline, ESC, ...) in a key patients are filed by."""
    for keyword, tag, words in _IDENTIFYING:
        value = text_value(dataset, keyword)
        found = CONTROL.search(value)
        if found is not None:
            return Problem(
                "control-character",
                f"control character in {words} {tag}",
                f"{words} {tag} '{printable(value)}' holds the control character "
                f"{printable(found.group())}; identifying text may not contain any",
            )
    return None
