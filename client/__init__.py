"""A Python client for the ARIA DB Daemon and any conformant Query/Retrieve SCP.

What Evil DICOM's DICOMSCU offers, in Python: ping/echo (a refusal explained in words), the
queries (patients, studies, series, images with their modality's keys, and a generic find),
move with counts and progress, store, retrieve to itself and plan export. Queries carry the
unique keys of the levels above; moves name exactly what they move and refuse to send an
empty or wildcard unique key. Failures are exceptions by cause, under :class:`ClientError`:
connection refused, unreachable, timed out, rejected, aborted (with what had arrived), a
failure status, an unsafe or empty move.

Installed as ``dbdaemon_client`` (from the repository's ``client/`` folder), a name no user
project has; it never imports simdaemon, so code verified against the emulator carries
nothing of it to the real daemon.
"""

from importlib import metadata

from dbdaemon_client.daemon_client import DaemonClient, Entity, QueryShapes
from dbdaemon_client.errors import (
    AssociationAborted,
    AssociationRejected,
    ClientError,
    ConnectionFailed,
    ConnectionRefused,
    ConnectionTimeout,
    DaemonStatusError,
    NothingMoved,
    Unreachable,
    UnsafeMove,
)
from dbdaemon_client.results import (
    ImageResult,
    MoveResult,
    PatientResult,
    SeriesResult,
    StoredObject,
    StoreResult,
    StudyResult,
)

try:
    #: The installed version: simdaemon's when installed with it, dbdaemon-client's alone.
    __version__ = metadata.version("dbdaemon-client")
except metadata.PackageNotFoundError:
    try:
        __version__ = metadata.version("simdaemon")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        __version__ = "0+unknown"

__all__ = [
    "AssociationAborted",
    "AssociationRejected",
    "ClientError",
    "ConnectionFailed",
    "ConnectionRefused",
    "ConnectionTimeout",
    "DaemonClient",
    "DaemonStatusError",
    "Entity",
    "ImageResult",
    "MoveResult",
    "NothingMoved",
    "PatientResult",
    "QueryShapes",
    "SeriesResult",
    "StoreResult",
    "StoredObject",
    "StudyResult",
    "Unreachable",
    "UnsafeMove",
    "__version__",
]
