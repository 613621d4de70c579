"""A Python client for the ARIA DB Daemon, verified against simdaemon; never imports it.

What Evil DICOM's DICOMSCU offers, in Python: so far ping/echo (a refusal explained in words),
the queries (patients, studies, series, images with their modality's keys, and a generic
find), move with counts and progress, and store; retrieve and plan export follow.
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
