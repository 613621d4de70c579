"""What a trainee changes after a refusal or a finding: one sentence per rule.

The audit event's detail says what happened in the case at hand (the AE title, the values
compared); this says where to act. Keyed by the event's ``rule``: every rule the daemon can
refuse, fail or abort by has a sentence here (``tests/test_console_advice.py`` finds the rule
names in the source and fails on one without), a finding carries its own fix, and an injected
fault points to the Faults page.
"""

from __future__ import annotations

from simdaemon.audit import SEVERITIES
from simdaemon.reporting import fix_of

__all__ = ["ADVICE", "FLAGGED", "advice"]

_TRUST = "add the calling AE title on Trusted entities, or correct it in the client"
_MALFORMED = "the object is not valid DICOM; fix the code that wrote it (the detail names the "
_INVALID = "the object breaks a rule the daemon checks on import; correct the attribute the "

ADVICE = {
    # The association (simdaemon.access, simdaemon.net).
    "calling-ae": _TRUST,
    "trusted": _TRUST,
    "peer-address": "change the trusted entity's IP to the address the client calls from",
    "called-ae": "make the client call the daemon's AE title (Configuration, AE Title)",
    "limit": "wait for the other associations to end, or raise [daemon] max_associations",
    "connection-limit": "close idle connections, or raise [limits] max_connections",
    "ae-title": "send an AE title of at most 16 printable ASCII characters",
    "pdu-size": "send PDUs no longer than the maximum the daemon negotiated "
    "([limits] max_pdu_length; [limits] max_associate_request before association)",
    "request-timeout": "send the whole A-ASSOCIATE-RQ at once after connecting "
    "([limits] associate_request_timeout)",
    "malformed-pdu": "the client sent bytes DICOM's state machine cannot act on; "
    "check the client's network code or library version",
    "context": "send each request on a presentation context of its own service's SOP class",
    # Requests (simdaemon.services).
    "query": "narrow the query (the detail says whether [limits] query_budget_s ran out or "
    "a key was refused)",
    "move": "check the Move Destination: a trusted entity with the right IP and port, "
    "whose storage SCP is listening",
    "move_universal_match": "name the objects by the level's unique key (the detail says "
    "which); [quirks] move_universal_match = true would move everything it matches",
    # Import (simdaemon.matching, simdaemon.importer).
    "patient-creation": "tick Automatic Patient Creation (Configuration), or import the "
    "patient first",
    "patient-matching": "tick more Patient Matching check boxes to tell the patients apart",
    "patient-id-unique": "correct the object's demographics, or untick the Patient Matching "
    "check box that differs",
    "on-duplicate": 'send a new SOP Instance UID, or set [storage] on_duplicate = "overwrite"',
    "study-patient": "the study belongs to another patient: fix the object's Patient ID",
    "series-study": "the series belongs to another study: fix the object's Study Instance UID",
    "archive-write": "free disk space under the archive folder, then send the object again",
    "import-charset": "declare the text's real Specific Character Set (0008,0005), or set "
    "the entity's import character set on Trusted entities",
    # Validation of the object (simdaemon.validation).
    "required-attribute": _INVALID + "detail names",
    "uid-syntax": _INVALID + "detail names (UIDs are digits and dots, at most 64 characters)",
    "value-length": _INVALID + "detail names (its VR's length limit)",
    "request-mismatch": "send the same SOP Class and Instance UIDs in the C-STORE request "
    "as in the object",
    "context-mismatch": "send the object on a presentation context of its own SOP class",
    "control-character": _INVALID + "detail names (no control characters in text)",
    # Well-formedness of the encoded object (simdaemon.wellformed).
    "transfer-syntax": "send the object in Implicit or Explicit VR Little Endian",
    "group-0002": _MALFORMED + "element): File Meta elements belong in the file header",
    "sequence-structure": _MALFORMED + "element): a sequence's items are not well-formed",
    "vr-encoding": _MALFORMED + "element): encode it in its presentation context's transfer syntax",
    "unknown-vr": _MALFORMED + "element): a VR DICOM does not define",
    "duplicate-element": _MALFORMED + "element): one tag appears twice",
    "tag-order": _MALFORMED + "element): tags must be in ascending order",
    "undefined-length": _MALFORMED + "element): an undefined length where none is allowed",
    "fault": "an injected fault did this: clear it on Faults",
}
#: Outcomes that are refusals, trouble or findings, highlighted on the Activity page.
FLAGGED = frozenset({"rejected", "refused", "failure", "aborted", "fired", "warning", *SEVERITIES})


def advice(operation: str, outcome: str, rule: str, detail: str = "") -> str:
    """What to change after this event; empty when nothing went wrong."""
    if outcome not in FLAGGED:
        return ""
    if operation == "fault":
        return ADVICE["fault"]
    if operation == "finding":
        return fix_of(detail)
    return ADVICE.get(rule, "read the detail: it names the rule and the value" if rule else "")
