"""Where findings go: one audit event and one log line each, and whether to refuse.

:mod:`simdaemon.findings` judges; this module records what it says. Each finding becomes an
audit event (operation ``finding``, ``rule`` the rule's name, ``outcome`` its severity, the
detail ``message N: evidence; fix: ...``) and one WARNING log line, and the request that
caused it is refused when the finding is at least ``[findings] fail_on`` severe.
"""

from __future__ import annotations

import logging

from simdaemon.audit import AuditTrail
from simdaemon.config import FindingsSettings
from simdaemon.findings import Finding, Severity

__all__ = ["Reporter", "fix_of", "refusal_comment"]

LOGGER = logging.getLogger("simdaemon.findings")

#: Error Comment (0000,0902) is LO: at most 64 characters.
_MAX_COMMENT = 64
#: Between a finding's evidence and its fix in the audit event's detail.
_FIX = "; fix: "
#: After the fix, when ``[findings] fail_on`` refused the request.
_REFUSED = " (refused: [findings] fail_on = "


def refusal_comment(finding: Finding) -> str:
    """The Error Comment of a request refused for a finding: the rule, then its evidence."""
    return f"{finding.rule}: {finding.evidence}"[:_MAX_COMMENT]


class Reporter:
    """Records findings in the audit trail and the log; says when a request is refused."""

    def __init__(self, audit: AuditTrail, settings: FindingsSettings) -> None:
        self.audit = audit
        self.settings = settings
        #: False: no rule runs (``[findings] enabled = false``, the benchmarks' baseline).
        self.enabled = settings.enabled
        fail_on = settings.fail_on
        self.fail_on: Severity | None = None if fail_on == "none" else Severity.parse(fail_on)

    def refuses(self, finding: Finding) -> bool:
        """Whether ``[findings] fail_on`` refuses a request with this finding."""
        return self.fail_on is not None and finding.severity >= self.fail_on

    def report(
        self,
        finding: Finding,
        *,
        calling_ae: str,
        called_ae: str,
        peer: str,
        message_id: int | None = None,
    ) -> bool:
        """Record ``finding``; return whether the request it is about is to be refused."""
        about = f"message {message_id}: " if message_id is not None else ""
        refused = self.refuses(finding)
        refusal = f'{_REFUSED}"{self.settings.fail_on}")' if refused else ""
        # Logged first: a test that waits for the audit event can read the log line too.
        LOGGER.warning(
            "finding %s (%s) from '%s': %s; fix: %s",
            finding.rule,
            finding.severity,
            calling_ae,
            finding.evidence,
            finding.fix,
        )
        self.audit.record(
            "finding",
            calling_ae=calling_ae,
            called_ae=called_ae,
            peer=peer,
            outcome=str(finding.severity),
            detail=f"{about}{finding.evidence}{_FIX}{finding.fix}{refusal}",
            rule=finding.rule,
        )
        return refused


def fix_of(detail: str) -> str:
    """What to change, from the detail of a finding event :meth:`Reporter.report` recorded.

    The evidence may quote a client's text, so the fix is the part after the *last* marker;
    empty when ``detail`` is not a finding's.
    """
    _, marker, fix = detail.rpartition(_FIX)
    return fix.split(_REFUSED, 1)[0] if marker else ""
