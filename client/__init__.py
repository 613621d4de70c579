"""A Python client for the ARIA DB Daemon, verified against simdaemon; never imports it.

What Evil DICOM's DICOMSCU offers, in Python: this first part pings the daemon and explains
a refusal in words; queries, moves and stores follow.
"""

from client.daemon_client import DaemonClient, Entity
from client.errors import AssociationRejected, ClientError, ConnectionTimeout, DaemonStatusError

__all__ = [
    "AssociationRejected",
    "ClientError",
    "ConnectionTimeout",
    "DaemonClient",
    "DaemonStatusError",
    "Entity",
]
