"""``/api/status``, ``/api/config``, ``/api/reset`` and ``/api/seed``: the daemon as a whole."""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Body
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from simdaemon import __version__, status
from simdaemon.config import ConfigError, render
from simdaemon.console.configuration import as_mapping, merged
from simdaemon.console.control import Control
from simdaemon.console.errors import ApiError

__all__ = ["SeedRequest", "router"]

#: Who seeded patients appear to come from in the audit trail.
SEED_AE = "CONSOLE"


class SeedRequest(BaseModel):
    """``POST /api/seed``: synthetic RT patients, the same for the same seed."""

    patients: int = Field(1, ge=1, le=50, description="how many patients")
    seed: int = Field(0, ge=0, le=10**9, description="seed of the first patient")
    slices: int = Field(20, ge=1, le=200, description="CT slices each")
    matrix: int = Field(128, ge=8, le=512, description="CT rows and columns")


def status_of(control: Control) -> dict[str, Any]:
    """What the daemon is and holds now."""
    return {
        "version": __version__,
        "running": control.running,
        "ae_title": control.ae_title,
        "host": control.host,
        "port": control.port if control.running else None,
        "trusted": len(control.trusted),
        "faults": len(control.faults),
        "instances": control.archive.count(),
        "audit_events": control.audit.recorded,
    }


def router(control: Control) -> APIRouter:
    """The routes, bound to ``control``."""
    api = APIRouter(prefix="/api")

    @api.get("/status", summary="The daemon's identity, address and counts")
    def get_status() -> dict[str, Any]:
        return status_of(control)

    @api.get("/config", summary="The configuration in force, as the TOML's tables")
    def get_config() -> dict[str, Any]:
        return as_mapping(control.config)

    @api.get(
        "/config.toml",
        summary="The configuration in force as TOML (what `simdaemon config --check` prints)",
        response_class=PlainTextResponse,
    )
    def get_config_toml() -> str:
        return render(control.config)

    @api.put(
        "/config",
        summary="Check and apply a whole configuration; the DICOM side restarts",
        description="The body has the TOML's tables; a table or key left out takes its "
        "default. Folders cannot be changed here. Trusted entities and faults changed at "
        "run time are replaced by the configuration's. Service will restart.",
    )
    def put_config(body: dict[str, Any] = Body(...)) -> dict[str, Any]:
        try:
            config = merged(control.config, body)
        except ConfigError as error:
            raise ApiError(422, str(error), error.key) from None
        previous = control.config
        try:
            control.restart(config)
        except Exception as error:  # noqa: BLE001 - answered, and the old configuration restored
            control.restart(previous)
            raise ApiError(409, f"the daemon could not restart: {error}", "daemon.port") from None
        return status_of(control)

    @api.post("/reset", summary="Empty the archive and the audit trail; configured trust only")
    def post_reset() -> dict[str, Any]:
        control.reset()
        return status_of(control)

    @api.post("/seed", summary="Import synthetic RT patients through the import rules")
    def post_seed(request: SeedRequest) -> dict[str, Any]:
        # Loaded here, not with the console: a console started beside a daemon answering its
        # first C-ECHO imports only what its pages need (see simdaemon.services).
        from simdaemon.importer import received_from
        from simdaemon.synthetic import synthetic_patient

        seeded = []
        for number in range(request.patients):
            patient = synthetic_patient(
                request.seed + number, slices=request.slices, matrix=request.matrix
            )
            for dataset in patient.datasets():
                started = time.perf_counter()
                result = control.importer.run(received_from(dataset, SEED_AE))
                control.audit.record(
                    "import",
                    calling_ae=SEED_AE,
                    called_ae=control.ae_title,
                    peer="console",
                    outcome=status.outcome(result.answered),
                    detail=f"seeded patient {patient.patient_id}: {result.detail}",
                    rule=result.rule,
                    status=result.answered,
                    duration_ms=(time.perf_counter() - started) * 1000,
                    sop_instance_uid=result.sop_instance_uid,
                )
            seeded.append(patient.patient_id)
        return {"patients": seeded}

    return api
