"""``/api/trusted`` and ``/api/faults``: who may call, and what goes wrong on purpose.

Both change at run time, without a restart, exactly as ``daemon.trust()`` and
``daemon.faults.add()`` do; ``POST /api/reset`` (or a restart) puts the configuration's back.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Body, Response

from simdaemon.config import ConfigError, normalize_ae_title
from simdaemon.console.configuration import entity_from
from simdaemon.console.control import Control
from simdaemon.console.errors import ApiError
from simdaemon.faults import Fault, FaultError

__all__ = ["router"]

_ENTITY_EXAMPLE = {"ae_title": "MYCLIENT", "ip": "127.0.0.1", "port": 51403,
                   "import_charset": "ISO_IR 6", "override_import_charset": False,
                   "export_charset": "ISO_IR 192"}  # fmt: skip
_FAULT_EXAMPLE = {"operation": "store", "status": 0xA700, "times": 3}


def _fault_json(number: int, rule: Fault) -> dict[str, Any]:
    return {"number": number, **rule.as_mapping(), "described": rule.describe()}


def router(control: Control) -> APIRouter:
    """The routes, bound to ``control``."""
    api = APIRouter(prefix="/api")

    def listing() -> list[dict[str, Any]]:
        return [dataclasses.asdict(entity) for entity in control.trusted]

    @api.get("/trusted", summary="The trusted entities in force (run-time changes included)")
    def get_trusted() -> list[dict[str, Any]]:
        return listing()

    @api.post(
        "/trusted",
        status_code=201,
        summary="Trust an entity, or change the one with the same AE title; no restart",
    )
    def post_trusted(
        body: dict[str, Any] = Body(..., examples=[_ENTITY_EXAMPLE]),
    ) -> dict[str, Any]:
        try:
            entity = entity_from(body)
        except ConfigError as error:
            raise ApiError(422, str(error), error.key) from None
        control.trust(entity)
        return dataclasses.asdict(entity)

    @api.put("/trusted/{ae_title}", summary="Change an entity (its AE title too); no restart")
    def put_trusted(
        ae_title: str,
        body: dict[str, Any] = Body(..., examples=[_ENTITY_EXAMPLE]),
    ) -> dict[str, Any]:
        old = normalize_ae_title(ae_title)
        if old not in {e.ae_title for e in control.trusted}:
            raise ApiError(404, f"'{old}' is not a trusted entity", "ae_title")
        try:
            entity = entity_from(body)
        except ConfigError as error:
            raise ApiError(422, str(error), error.key) from None
        if entity.ae_title != old:
            control.untrust(old)
        control.trust(entity)
        return dataclasses.asdict(entity)

    @api.delete("/trusted/{ae_title}", status_code=204, summary="Stop trusting an AE title")
    def delete_trusted(ae_title: str) -> Response:
        try:
            control.untrust(ae_title)
        except KeyError as error:
            raise ApiError(404, str(error.args[0]), "ae_title") from None
        return Response(status_code=204)

    @api.get("/faults", summary="The injected faults in force, in the order they are tried")
    def get_faults() -> list[dict[str, Any]]:
        return [_fault_json(n, rule) for n, rule in enumerate(control.faults.rules, start=1)]

    @api.post(
        "/faults",
        status_code=201,
        summary="Add a fault rule (the keys of [[faults]]: operation, status, times, ...)",
    )
    def post_faults(
        body: dict[str, Any] = Body(..., examples=[_FAULT_EXAMPLE]),
    ) -> dict[str, Any]:
        options = dict(body)
        operation = options.pop("operation", None)
        if operation is None:
            raise ApiError(422, "operation: missing; expected one of associate, echo, find, "
                           "store, move, suboperation", "operation")  # fmt: skip
        try:
            rule = control.faults.add(operation, **options)
        except FaultError as error:
            raise ApiError(422, str(error), error.key) from None
        except TypeError as error:  # a key Fault does not take
            raise ApiError(422, str(error), None) from None
        return _fault_json(len(control.faults), rule)

    @api.delete("/faults", status_code=204, summary="Remove every injected fault")
    def delete_faults() -> Response:
        control.faults.clear()
        return Response(status_code=204)

    return api
