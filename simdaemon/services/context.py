"""What every service is handed: the daemon's parts a request may use, and its answers.

The daemon builds one :class:`ServiceContext` in ``start()`` and hands it to echo, find, store
and move alike, with the request's :class:`~simdaemon.faults.FaultPlan` beside it; a service
takes what it needs from the context and imports nothing from the daemon or the injector.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydicom.dataset import Dataset

from simdaemon import status
from simdaemon.archive import Archive, ArchiveError
from simdaemon.audit import AuditTrail
from simdaemon.config import Limits, Quirks, TrustedEntity
from simdaemon.investigation import Investigator
from simdaemon.reporting import Reporter

if TYPE_CHECKING:  # loaded by the services that use them (see simdaemon.services)
    from simdaemon.importer import Importer
    from simdaemon.query import Shape

__all__ = ["MAX_COMMENT", "ServiceContext", "failure", "status_answer"]

#: Error Comment (0000,0902) is LO: at most 64 characters.
MAX_COMMENT = 64


@dataclass(frozen=True)
class ServiceContext:
    """The daemon's parts, as the services see them; one per running daemon."""

    #: The archive and the import pipeline, opened on first use (hence getters).
    archive: Callable[[], Archive]
    importer: Callable[[], Importer]
    #: The trusted entity with this AE title now (runtime trust included), or None.
    entity: Callable[[str], TrustedEntity | None]
    audit: AuditTrail
    #: The daemon's own AE title: Retrieve AE Title of C-FIND answers, calling AE of moves.
    ae_title: str
    investigator: Investigator
    #: ``[quirks]``: the response shape of C-FIND answers, among others.
    quirks: Quirks
    #: ``[limits]``: the query budget a C-FIND runs within, among others.
    limits: Limits
    #: Where findings go (:mod:`simdaemon.reporting`): audit, log, and whether to refuse.
    findings: Reporter

    @functools.cached_property
    def shape(self) -> Shape:
        """The ``[quirks]`` response shape of C-FIND and C-MOVE identifiers.

        Made on the first query, not in ``start()``: :mod:`simdaemon.query` loads with it.
        """
        from simdaemon.query import Shape

        return Shape(
            course_id_as_study_id=self.quirks.course_id_as_study_id,
            aria_series_descriptions=self.quirks.aria_series_descriptions,
            series_without_study_keys=self.quirks.series_without_study_keys,
        )


def status_answer(code: int, comment: str = "") -> Dataset:
    """A response status data set: ``code``, and the Error Comment when there is one."""
    answer = Dataset()
    answer.Status = code
    if comment:
        answer.ErrorComment = comment[:MAX_COMMENT]
    return answer


def failure(error: BaseException) -> tuple[int, str]:
    """The failure status and Error Comment answering a request a service failed to serve.

    Out of resources (0xA700) when the archive or its disk failed (a full disk, a locked or
    broken database), so the caller knows to retry later; else unable to process (0xC000).
    Either way the comment names the exception, so the answer is never a bare code.
    """
    name = type(error).__name__
    if isinstance(error, (OSError, sqlite3.Error, ArchiveError)):
        return status.OUT_OF_RESOURCES, f"out of resources: archive failed ({name})"[:MAX_COMMENT]
    return status.UNABLE_TO_PROCESS, f"the daemon failed ({name}); see its log"[:MAX_COMMENT]
