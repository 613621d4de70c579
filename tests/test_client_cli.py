"""``python -m client`` as a physicist tries it, and the client's connection failures."""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from pydicom import dcmread

from dbdaemon_client import AssociationRejected, DaemonClient, Entity, cli
from simdaemon.pytest_plugin import TestDaemon
from simdaemon.synthetic import SyntheticPatient

pytestmark = pytest.mark.slow  # runs the client's command line in subprocesses


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


def test_the_client_installs_and_works_on_its_own(simdaemon: TestDaemon, tmp_path: Path) -> None:
    """``client/`` builds alone as ``dbdaemon-client``: a production script needs nothing more."""
    folder = Path(__file__).resolve().parent.parent / "client"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", str(folder), "-w", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("dbdaemon_client-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(next(n for n in names if n.endswith("/METADATA"))).decode()
        archive.extractall(tmp_path / "site")
    assert {n.split("/")[0] for n in names} == {"dbdaemon_client", wheel.name.split("-py3")[0]
                                                + ".dist-info"}  # fmt: skip
    assert sorted(re.findall(r"^Requires-Dist: (\w+)", metadata, re.MULTILINE)) == [
        "pydicom", "pynetdicom"
    ]  # fmt: skip
    entity = simdaemon.test_entity
    script = (
        f"import sys; sys.path.insert(0, {str(tmp_path / 'site')!r})\n"
        "import dbdaemon_client\n"
        f"assert dbdaemon_client.__file__.startswith({str(tmp_path)!r}), dbdaemon_client.__file__\n"
        "from dbdaemon_client.cli import main\n"
        f"code = main(['--local', '{entity.ae_title}@{entity.host}:{entity.port}', '--daemon',\n"
        f"             '{simdaemon.ae_title}@{simdaemon.host}:{simdaemon.port}', 'echo'])\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'simdaemon']\n"
        "sys.exit(code)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "C-ECHO to VMSDBD: success\n"


def test_retrieve_moves_exactly_the_patient_asked_for(
    simdaemon: TestDaemon, synthetic_patient: Callable[..., SyntheticPatient], tmp_path: Path
) -> None:
    patients = [synthetic_patient(seed, slices=4, matrix=16) for seed in range(3)]
    wanted = patients[1]
    count = len(wanted.datasets())
    done = run(simdaemon, "retrieve", "STUDY", "-k", f"PatientID={wanted.patient_id}",
               "--into", str(tmp_path / "ret"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        f"about to retrieve 1 patient ({wanted.patient_id} ({wanted.name})), 1 study, "
        f"{count} objects",
        f"retrieved {count} object(s) into {tmp_path / 'ret'}",
    ]
    arrived = [dcmread(p) for p in (tmp_path / "ret").iterdir()]
    assert sorted(str(ds.SOPInstanceUID) for ds in arrived) == sorted(
        str(ds.SOPInstanceUID) for ds in wanted.datasets()
    )
    (move,) = simdaemon.audit.events("move")
    assert wanted.study_uid in move.detail


def test_retrieve_refuses_several_patients_unless_told(
    simdaemon: TestDaemon, synthetic_patient: Callable[..., SyntheticPatient], tmp_path: Path
) -> None:
    patients = [synthetic_patient(seed, slices=2, matrix=16) for seed in range(3)]
    refused = run(simdaemon, "retrieve", "STUDY", "-k", "PatientID=*", "--into",
                  str(tmp_path / "all"))  # fmt: skip
    assert refused.returncode == 1
    assert "the query matched 3 patients; nothing was moved" in refused.stderr
    assert "--all-matching" in refused.stderr
    assert refused.stdout.startswith("about to retrieve 3 patients (")
    assert simdaemon.audit.events("move") == []
    assert not (tmp_path / "all").exists()
    total = sum(len(p.datasets()) for p in patients)
    allowed = run(simdaemon, "retrieve", "STUDY", "-k", "PatientID=*", "--into",
                  str(tmp_path / "all"), "--all-matching")  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert allowed.stdout.endswith(f"retrieved {total} object(s) into {tmp_path / 'all'}\n")
    assert len(simdaemon.audit.events("move")) == 3  # one C-MOVE per study, by its UID


def test_find_prints_default_keys_and_json(
    simdaemon: TestDaemon, rt_patient: SyntheticPatient
) -> None:
    shown = run(simdaemon, "find", "STUDY", "-k", f"PatientID={rt_patient.patient_id}")
    assert shown.returncode == 0, shown.stderr
    (line,) = shown.stdout.splitlines()
    assert f"StudyInstanceUID={rt_patient.study_uid}" in line
    assert f"StudyID={rt_patient.course_id}" in line
    assert f"PatientName={rt_patient.name}" in line
    as_json = run(simdaemon, "find", "SERIES", "-k", f"StudyInstanceUID={rt_patient.study_uid}",
                  "-k", "Modality=CT", "--json")  # fmt: skip
    assert as_json.returncode == 0, as_json.stderr
    (series,) = json.loads(as_json.stdout)
    assert series["SeriesInstanceUID"] == rt_patient.ct_series_uid
    assert series["Modality"] == "CT"
    assert series["QueryRetrieveLevel"] == "SERIES"


def test_help_is_plain_text_with_every_option_explained() -> None:
    parser = cli._parser()
    subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command in (parser, *subcommands.choices.values()):
        for action in command._actions:
            named = action.option_strings or action.dest
            assert action.help, f"{command.prog}: {named} has no help"
    for command in ([], ["find"], ["retrieve"], ["export-plan"], ["echo"]):
        args = ["--local", "A@h:1", "--daemon", "B@h:2", *command] if command else []
        done = subprocess.run([sys.executable, "-m", "dbdaemon_client", *args, "--help"],
                              capture_output=True, text=True, timeout=60)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith("usage: python -m dbdaemon_client")
        assert "::" not in done.stdout  # no reStructuredText
        assert "``" not in done.stdout


def test_version_is_printed_without_other_arguments() -> None:
    import dbdaemon_client

    done = subprocess.run([sys.executable, "-m", "dbdaemon_client", "--version"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["python", "-m", "dbdaemon_client", dbdaemon_client.__version__]
    assert dbdaemon_client.__version__ != "0+unknown"


def test_patient_level_with_study_root_says_to_use_the_patient_model() -> None:
    args = ["--local", "A@127.0.0.1:1", "--daemon", "B@127.0.0.1:2", "find", "PATIENT",
            "--model", "study"]  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "dbdaemon_client", *args],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert "PATIENT level is in the Patient Root model only" in done.stderr
    assert "use --model patient" in done.stderr
