"""DIMSE services: one module per service, translating protocol events to daemon actions.

The daemon wires the entry points below rather than the modules' own functions: each loads
its service's module on the first request it serves. So a daemon answers its first C-ECHO
without having loaded the query rules, the SQL lookup, the import pipeline or patient
matching - about a tenth of ``simdaemon serve``'s time from process start to the first
answered C-ECHO (issue 17, ``benchmarks/startup.py``) - and the first C-FIND, C-STORE or
C-MOVE of a process pays that once, some 30 ms. After that an entry point costs a microsecond
(the import finds the module loaded). Each is named as the function it stands for, never as
a module: once loaded, ``simdaemon.services.find`` is the module, as ``from
simdaemon.services import find`` expects.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pynetdicom import evt
    from pynetdicom.association import Association
    from pynetdicom.dimse_primitives import C_MOVE

    from simdaemon.faults import FaultPlan
    from simdaemon.services.context import ServiceContext
    from simdaemon.services.find import Response

__all__ = ["fail_move", "handle_find", "handle_store", "serve_move"]


def handle_find(event: evt.Event, context: ServiceContext, plan: FaultPlan) -> Iterator[Response]:
    """:func:`simdaemon.services.find.handle_find`."""
    from simdaemon.services import find

    return find.handle_find(event, context, plan)


def handle_store(event: evt.Event, context: ServiceContext, plan: FaultPlan) -> Dataset | int:
    """:func:`simdaemon.services.store.handle_store`."""
    from simdaemon.services import store

    return store.handle_store(event, context, plan)


def serve_move(
    context: ServiceContext, plan: FaultPlan, assoc: Association, request: C_MOVE, context_id: int
) -> None:
    """:func:`simdaemon.services.move.serve_move`."""
    from simdaemon.services import move

    move.serve_move(context, plan, assoc, request, context_id)


def fail_move(assoc: Association, request: C_MOVE, context_id: int) -> None:
    """:func:`simdaemon.services.move.fail_move`."""
    from simdaemon.services import move

    move.fail_move(assoc, request, context_id)
