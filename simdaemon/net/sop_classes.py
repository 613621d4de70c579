"""Teaching pynetdicom to serve C-STORE for private SOP classes (Varian's)."""

from __future__ import annotations

from collections.abc import Iterable

from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.sop_class import register_uid, uid_to_service_class

__all__ = ["register_private_storage"]


def register_private_storage(uids: Iterable[str]) -> None:
    """Make pynetdicom serve C-STORE for each of ``uids`` it does not know yet.

    pynetdicom accepts any abstract syntax it is given, but serves only the SOP classes it
    knows: a C-STORE of a Varian private object would go unanswered ("No supported service
    class available"). Registering them as storage classes fixes that; it is process-wide,
    which also lets a pynetdicom storage SCP in the same process (a test's receiver) take them.
    """
    for uid in uids:
        if uid_to_service_class(uid) is ServiceClass:
            register_uid(uid, f"PrivateStorage_{uid.replace('.', '_')}", StorageServiceClass)
