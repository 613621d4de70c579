"""A Python client for the ARIA DB Daemon, verified against simdaemon; never imports it.

What Evil DICOM's DICOMSCU offers, in Python: ping/echo (a refusal explained in words), the
queries (patients, studies, series, images with their modality's keys, and a generic find),
move with counts and progress, store, retrieve to itself and plan export. Failures are
exceptions that say what the daemon did: rejected, answered a failure status, aborted (with
what had arrived), or did not answer in time.
"""

from client.daemon_client import DaemonClient, Entity
from client.errors import (
    AssociationAborted,
    AssociationRejected,
    ClientError,
    ConnectionTimeout,
    DaemonStatusError,
)
from client.results import (
    ImageResult,
    MoveResult,
    PatientResult,
    SeriesResult,
    StoredObject,
    StoreResult,
    StudyResult,
)

__all__ = [
    "AssociationAborted",
    "AssociationRejected",
    "ClientError",
    "ConnectionTimeout",
    "DaemonClient",
    "DaemonStatusError",
    "Entity",
    "ImageResult",
    "MoveResult",
    "PatientResult",
    "SeriesResult",
    "StoreResult",
    "StoredObject",
    "StudyResult",
]
