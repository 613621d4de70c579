"""A Python client for the ARIA DB Daemon, verified against simdaemon; never imports it.

What Evil DICOM's DICOMSCU offers, in Python: so far ping/echo (a refusal explained in words)
and the queries (patients, studies, series, images with their modality's keys, and a generic
find); moves, stores and plan export follow.
"""

from client.daemon_client import DaemonClient, Entity
from client.errors import AssociationRejected, ClientError, ConnectionTimeout, DaemonStatusError
from client.results import ImageResult, PatientResult, SeriesResult, StudyResult

__all__ = [
    "AssociationRejected",
    "ClientError",
    "ConnectionTimeout",
    "DaemonClient",
    "DaemonStatusError",
    "Entity",
    "ImageResult",
    "PatientResult",
    "SeriesResult",
    "StudyResult",
]
