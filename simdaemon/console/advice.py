"""What a trainee changes after a refusal: one sentence per rule that can refuse.

The audit event's detail says what happened in the case at hand (the AE title, the values
compared); this says where in the console to act. Keyed by the event's ``rule``.
"""

from __future__ import annotations

__all__ = ["ADVICE", "advice"]

ADVICE = {
    "calling-ae": "add the calling AE title on Trusted entities, or correct it in the client",
    "trusted": "add the calling AE title on Trusted entities, or correct it in the client",
    "peer-address": "change the trusted entity's IP to the address the client calls from",
    "called-ae": "make the client call the daemon's AE title (Configuration, AE Title)",
    "limit": "wait for the other associations to end, or raise [daemon] max_associations",
    "patient-creation": "tick Automatic Patient Creation (Configuration), or import the "
    "patient first",
    "patient-matching": "tick more Patient Matching check boxes to tell the patients apart",
    "patient-id-unique": "correct the object's demographics, or untick the Patient Matching "
    "check box that differs",
    "on-duplicate": 'send a new SOP Instance UID, or set [storage] on_duplicate = "overwrite"',
    "study-patient": "the study belongs to another patient: fix the object's Patient ID",
    "series-study": "the series belongs to another study: fix the object's Study Instance UID",
    "fault": "an injected fault did this: clear it on Faults",
}
#: Outcomes that are refusals or trouble, highlighted on the Activity page.
FLAGGED = frozenset({"rejected", "failure", "aborted", "fired", "warning"})


def advice(operation: str, outcome: str, rule: str) -> str:
    """What to change after this event; empty when nothing went wrong."""
    if outcome not in FLAGGED:
        return ""
    if operation == "fault":
        return ADVICE["fault"]
    return ADVICE.get(rule, "read the detail: it names the rule and the value" if rule else "")
