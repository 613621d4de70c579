"""The DIMSE status codes the daemon answers, with the words the audit trail uses for them.

One place for the numbers, so the import pipeline, the services and the tests agree on them.
"""

from __future__ import annotations

__all__ = [
    "AMBIGUOUS_PATIENT",
    "CANCELLED",
    "COERCED",
    "DESTINATION_UNKNOWN",
    "DUPLICATE_INSTANCE",
    "IDENTIFIER_MISMATCH",
    "INTERNAL_FAILURE",
    "INVALID_OBJECT",
    "NO_MATCHING_PATIENT",
    "OUT_OF_RESOURCES",
    "PATIENT_CONFLICT",
    "PENDING",
    "QUIRK_REFUSED",
    "SUBOPERATIONS_FAILED",
    "SUCCESS",
    "UNABLE_TO_COUNT",
    "UNABLE_TO_PERFORM",
    "UNABLE_TO_PROCESS",
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

# C-FIND and C-MOVE (PS3.4 C.4.1.1.4, C.4.2.1.5)
#: Pending: a match or a sub-operation follows. Always 0xFF00 (Evil DICOM takes 0xFF01 as final).
PENDING = 0xFF00
#: Cancel: the request was ended by C-CANCEL.
CANCELLED = 0xFE00
#: Failure: "Unable to process" - a bad identifier, or a move that would over-reach.
UNABLE_TO_PROCESS = 0xC000
#: Warning: "Sub-operations Complete - One or more Failures".
SUBOPERATIONS_FAILED = 0xB000
#: Failure: "Refused: Out of Resources - Unable to calculate number of matches".
UNABLE_TO_COUNT = 0xA701
#: Failure: "Refused: Out of Resources - Unable to perform sub-operations" (destination down).
UNABLE_TO_PERFORM = 0xA702
#: Failure: "Refused: Move Destination unknown".
DESTINATION_UNKNOWN = 0xA801
#: Failure: "Identifier does not match SOP Class".
IDENTIFIER_MISMATCH = 0xA900
#: Failure: the ``image_move_requires_series_uid`` quirk refused an IMAGE move.
QUIRK_REFUSED = 0xC001
#: Failure: an internal error ended the move (never success).
INTERNAL_FAILURE = 0xC511


def outcome(status: int) -> str:
    """Return ``"success"``, ``"warning"``, ``"pending"``, ``"cancel"`` or ``"failure"``."""
    if status == SUCCESS:
        return "success"
    if status in (PENDING, 0xFF01):
        return "pending"
    if status == CANCELLED:
        return "cancel"
    if status == 0x0001 or status & 0xF000 == 0xB000:
        return "warning"
    return "failure"
