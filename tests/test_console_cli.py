"""``simdaemon serve`` starts the console by default, says where, and takes its options."""

from __future__ import annotations

import argparse
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from simdaemon.cli import CONSOLE_PORTS_TRIED, console_candidates
from simdaemon.config import ConfigError, from_mapping
from tests.conftest import has_second_loopback
from tests.http import call
from tests.test_cli import Served, served, simdaemon
from tests.test_console_api import png_pixels

__all__ = ["served"]  # the fixture, shared with test_cli

pytestmark = pytest.mark.slow

CONSOLE = "console on "


def console_url(server: Served) -> str:
    """The console line ``serve`` wrote to stderr before its listening line."""
    assert server.process.stderr is not None
    for _ in range(200):  # the line precedes the listening line already read
        line = server.process.stderr.readline()
        if line.startswith(CONSOLE):
            return line.removeprefix(CONSOLE).strip()
    raise AssertionError("no console line on stderr")


def test_serve_starts_the_console_and_says_where(served: list[Served]) -> None:
    server = Served("--demo")
    served.append(server)
    url = console_url(server)
    assert url.startswith("http://127.0.0.1:")
    status = call(url, "GET", "/api/status").json()
    assert status["port"] == server.port
    patients = call(url, "GET", "/api/patients").json()
    assert [p["patient_id"] for p in patients] == ["SYN000000", "SYN000001", "SYN000002"]
    # The command's process has no numpy (simdaemon.launch): thumbnails need none.
    instances = call(url, "GET", "/api/patients/SYN000000/instances").json()
    for modality in ("CT", "RTSTRUCT"):
        uid = next(i["sop_instance_uid"] for i in instances if i["modality"] == modality)
        picture = call(url, "GET", f"/api/instances/{uid}/thumbnail.png")
        assert picture.status == 200, picture.body
        width, height, pixels = png_pixels(picture.body, 1 if modality == "CT" else 3)
        assert min(width, height) > 0
        assert len(set(pixels)) > 1, f"the {modality} thumbnail is blank"
    code, _, _ = server.stop()
    assert code == 0


def test_no_console_serves_none(served: list[Served], tmp_path: Path) -> None:
    server = Served("--no-console", "--archive", str(tmp_path / "a"))
    served.append(server)
    _, _, err = server.stop()
    assert CONSOLE not in err


def test_a_console_with_a_token_refuses_requests_without_it(
    served: list[Served], tmp_path: Path
) -> None:
    if not has_second_loopback():
        pytest.skip("127.0.0.2 cannot be bound here")
    token = "a-token-long-enough-for-the-rule"
    server = Served("--archive", str(tmp_path / "a"), "--console", "127.0.0.2:0",
                    "--console-token", token)  # fmt: skip
    served.append(server)
    url = console_url(server)
    assert url.startswith("http://127.0.0.2:")
    assert call(url, "GET", "/api/status").status == 401
    bearer = {"Authorization": f"Bearer {token}"}
    assert call(url, "GET", "/api/status", headers=bearer).status == 200
    _, _, err = server.stop()
    assert token not in err, "a token the user gave is not echoed to the log"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--console", "nowhere"], '--console = "nowhere" is not allowed: expected HOST:PORT'),
        (["--console", "localhost:1"], "is not an IP address"),
        (["--console-token", "short"], "at least 16 characters"),
    ],
)
def test_console_option_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run(
        simdaemon("serve", "--port", "0", "--archive", str(tmp_path / "a"), *args),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def _daemon(port: int, trusted_ports: list[int]) -> Any:
    config = from_mapping({"daemon": {"port": port}})
    trusted = [SimpleNamespace(port=p) for p in trusted_ports]
    return SimpleNamespace(port=port, trusted=trusted, config=config)


def _args(**given: Any) -> argparse.Namespace:
    return argparse.Namespace(**{"console": None, "console_token": None, **given})


def test_the_console_port_is_next_to_the_dicom_port_but_not_a_trusted_entitys() -> None:
    candidates = console_candidates(_args(), _daemon(51402, [51403]))
    ports = [c.port for c in candidates]
    assert ports[:2] == [51404, 51405]
    assert ports[-1] == 0, "an ephemeral port when all of them are taken"
    assert len(ports) == CONSOLE_PORTS_TRIED
    assert {c.host for c in candidates} == {"127.0.0.1"}
    assert [c.port for c in console_candidates(_args(), _daemon(0, []))] == [0]
    (given,) = console_candidates(_args(console="[::1]:8080"), _daemon(51402, []))
    assert (given.host, given.port) == ("::1", 8080)
    with pytest.raises(ConfigError, match="--console"):
        console_candidates(_args(console="8080"), _daemon(51402, []))
