"""``python -m client`` as a physicist tries it, and the client's connection failures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dbdaemon_client import AssociationRejected, DaemonClient, Entity
from simdaemon.pytest_plugin import TestDaemon
from simdaemon.synthetic import SyntheticPatient


def run(
    daemon: TestDaemon, *args: str, calling: str | None = None
) -> subprocess.CompletedProcess[str]:
    entity = daemon.test_entity
    local = f"{calling or entity.ae_title}@{entity.host}:{entity.port}"
    remote = f"{daemon.ae_title}@{daemon.host}:{daemon.port}"
    return subprocess.run(
        [sys.executable, "-m", "dbdaemon_client", "--local", local, "--daemon", remote, *args],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_echo_find_retrieve_and_export(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient, tmp_path: Path
) -> None:
    assert run(simdaemon, "echo").stdout == "C-ECHO to VMSDBD: success\n"
    found = run(simdaemon, "find", "STUDY", "-k", f"PatientID={rt_patient.patient_id}",
                "-k", "StudyID")  # fmt: skip
    assert found.returncode == 0, found.stderr
    assert f"StudyID={rt_patient.course_id}" in found.stdout
    series = f"SeriesInstanceUID={rt_patient.ct_series_uid}"
    retrieved = run(simdaemon, "retrieve", "SERIES", "-k", series, "--into", str(tmp_path / "ct"))
    assert retrieved.returncode == 0, retrieved.stderr
    assert len(list((tmp_path / "ct").iterdir())) == len(rt_patient.ct)
    exported = run(simdaemon, "export-plan", rt_patient.patient_id, rt_patient.plan_label,
                   "--into", str(tmp_path / "plan"))  # fmt: skip
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout == (
        f"exported {len(rt_patient.ct) + 3} object(s) into {tmp_path / 'plan'}\n"
    )


def test_a_refusal_is_explained_and_exits_1(simdaemon: TestDaemon) -> None:
    refused = run(simdaemon, "echo", calling="STRANGER")
    assert refused.returncode == 1
    assert "calling AE title not recognized" in refused.stderr
    assert "Traceback" not in refused.stderr


def test_a_wrong_daemon_ae_title_is_rejected(simdaemon: TestDaemon) -> None:
    entity = simdaemon.test_entity
    client = DaemonClient(Entity(entity.ae_title, entity.host, entity.port),
                          Entity("NOTARIA", simdaemon.host, simdaemon.port))  # fmt: skip
    with pytest.raises(AssociationRejected, match="called AE title not recognized"):
        client.find_patients()
    assert not client.ping()


def test_the_client_never_imports_simdaemon() -> None:
    """So code verified against simdaemon carries nothing of it to the real daemon."""
    check = (
        "import sys, dbdaemon_client, dbdaemon_client.cli, dbdaemon_client.transport\n"
        "leaked = sorted(m for m in sys.modules if m.split('.')[0] == 'simdaemon')\n"
        "assert not leaked, leaked\n"
    )
    done = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
