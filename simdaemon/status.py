"""The DIMSE status codes the daemon answers, with the words the audit trail uses for them.

One place for the numbers, so the import pipeline, the services and the tests agree on them.
"""

from __future__ import annotations

__all__ = [
    "AMBIGUOUS_PATIENT",
    "COERCED",
    "DUPLICATE_INSTANCE",
    "INVALID_OBJECT",
    "NO_MATCHING_PATIENT",
    "OUT_OF_RESOURCES",
    "PATIENT_CONFLICT",
    "SUCCESS",
    "outcome",
]

SUCCESS = 0x0000
#: Warning: "Coercion of Data Elements" - text that could not be decoded was replaced.
COERCED = 0xB000
#: Failure: "Refused: Out of Resources" - the archive could not be written.
OUT_OF_RESOURCES = 0xA700
#: Failure: "Data Set does not match SOP Class" - a required attribute is missing or invalid.
INVALID_OBJECT = 0xA900
#: Failure: no stored patient matches and automatic patient creation is off.
NO_MATCHING_PATIENT = 0xC001
#: Failure: the Patient ID belongs to a stored patient whose demographics disagree.
PATIENT_CONFLICT = 0xC002
#: Failure: more than one stored patient matches.
AMBIGUOUS_PATIENT = 0xC003
#: Failure: the SOP Instance UID is already archived and ``on_duplicate = "reject"``.
DUPLICATE_INSTANCE = 0xC004


def outcome(status: int) -> str:
    """Return ``"success"``, ``"warning"``, ``"pending"``, ``"cancel"`` or ``"failure"``."""
    if status == SUCCESS:
        return "success"
    if status in (0xFF00, 0xFF01):
        return "pending"
    if status == 0xFE00:
        return "cancel"
    if status == 0x0001 or status & 0xF000 == 0xB000:
        return "warning"
    return "failure"
