"""The daemon's SOP classes: pynetdicom taught to serve Varian's private ones, and an AE's
supported contexts built without validating the same UIDs for every daemon."""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterable

from pydicom.uid import UID
from pynetdicom import AE
from pynetdicom.presentation import PresentationContext
from pynetdicom.service_class import ServiceClass, StorageServiceClass
from pynetdicom.sop_class import register_uid, uid_to_service_class

__all__ = ["register_private_storage", "support"]


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


@functools.cache
def _validated(
    abstract_syntaxes: tuple[str, ...], transfer_syntaxes: tuple[str, ...]
) -> dict[UID, PresentationContext]:
    """Supported contexts built (and their UIDs validated) once per process."""
    template = AE()
    for syntax in abstract_syntaxes:
        template.add_supported_context(syntax, list(transfer_syntaxes))
    return dict(template._supported_contexts)


def support(ae: AE, abstract_syntaxes: Iterable[str], transfer_syntaxes: Iterable[str]) -> None:
    """Give ``ae`` a supported context per abstract syntax, each with ``transfer_syntaxes``.

    What ``add_supported_context`` for each does, without validating the same 23 x 2 UIDs with
    pydicom again for every daemon (3 ms of a test's fresh daemon): the contexts are built
    once per process and each AE gets copies of its own (their transfer syntax lists too, which
    ``remove_supported_context`` changes in place).
    """
    contexts = _validated(tuple(abstract_syntaxes), tuple(transfer_syntaxes))
    for uid, context in contexts.items():
        mine = copy.copy(context)
        mine._transfer_syntax = list(context._transfer_syntax)
        ae._supported_contexts[uid] = mine
