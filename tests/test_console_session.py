"""A whole session driven only through the HTTP API, as a C# test suite would drive simdaemon.

``simdaemon serve --demo`` runs as a separate process; between "tests" the suite resets it,
seeds, trusts its own AE, injects a fault, stores with DCMTK's storescu and asserts on the
audit trail: no Python API of simdaemon is used.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests import objects
from tests.http import call
from tests.test_cli import Served, served
from tests.test_console_cli import console_url

__all__ = ["served"]

pytestmark = [pytest.mark.dcmtk, pytest.mark.slow]


def test_a_csharp_style_session_over_http(
    served: list[Served], dcmtk: Callable[[str], str], tmp_path: Path
) -> None:
    server = Served("--demo")
    served.append(server)
    url = console_url(server)

    def http(method: str, path: str, body: object = None) -> Any:
        answer = call(url, method, path, body)
        assert answer.status < 300, answer.body
        return answer.json() if answer.body else None

    status = http("POST", "/api/reset")
    assert status["instances"] == 0
    assert http("POST", "/api/seed", {"patients": 1, "seed": 3, "slices": 2, "matrix": 32})
    http("POST", "/api/trusted", {"ae_title": "CSHARP", "ip": "127.0.0.1", "port": 11112})
    http("POST", "/api/faults", {"operation": "store", "status": 0xA700, "times": 1,
                                 "calling_ae": "CSHARP"})  # fmt: skip
    first, second = objects.ct(size=16), objects.ct(size=16)
    second = objects.same_patient(first, second)
    files = []
    for number, ds in enumerate([first, second]):
        path = tmp_path / f"{number}.dcm"
        ds.save_as(path, enforce_file_format=True)
        files.append(str(path))
    command = [dcmtk("storescu"), "-aet", "CSHARP", "-aec", status["ae_title"], "127.0.0.1",
               str(status["port"])]  # fmt: skip
    for path in files:  # one association each, as a suite's two tests would
        subprocess.run([*command, path], capture_output=True, text=True, timeout=60)

    stores = http("GET", "/api/audit?operation=store&calling_ae=CSHARP")
    # The first met the fault (answered 0xA700, recorded as the fault firing), the second
    # was stored.
    fired = http("GET", "/api/audit?operation=fault&calling_ae=CSHARP")
    assert [(e["outcome"], e["status"]) for e in fired] == [("fired", 0xA700)]
    assert [(e["outcome"], e["sop_instance_uid"]) for e in stores] == [
        ("success", second.SOPInstanceUID)
    ]
    patients = [p["patient_id"] for p in http("GET", "/api/patients")]
    assert patients == ["SYN000003", "PAT001"]
    assert http("GET", "/api/status")["instances"] == status["instances"] + 8 + 1
    code, _, _ = server.stop()
    assert code == 0
