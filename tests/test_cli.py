"""The ``simdaemon`` command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from simdaemon import config
from simdaemon.archive import Archive
from simdaemon.dcmtk import find_dcmtk
from simdaemon.progress import Progress
from tests import objects, scu

pytestmark = pytest.mark.slow  # runs the simdaemon command line in subprocesses

LISTENING = "listening on "


def simdaemon(*args: str) -> list[str]:
    return [sys.executable, "-m", "simdaemon", *args]


class Served:
    """A ``simdaemon serve`` subprocess and the port its listening line reported."""

    def __init__(self, *args: str) -> None:
        self.process = subprocess.Popen(
            simdaemon("serve", "--port", "0", *args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        self.line = self.process.stdout.readline().rstrip("\n")
        host_port = self.line.removeprefix(LISTENING).split(" as ")[0]
        self.port = int(host_port.rsplit(":", 1)[1]) if self.line.startswith(LISTENING) else 0

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, str, str]:
        self.process.send_signal(sig)
        out, err = self.process.communicate(timeout=10)
        return self.process.returncode, out, err


@pytest.fixture
def served() -> Iterator[list[Served]]:
    running: list[Served] = []
    yield running
    for server in running:
        if server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_serve_prints_one_line_and_stops_cleanly(served: list[Served], sig: int) -> None:
    server = Served("--demo")
    served.append(server)
    assert server.line == f"listening on 127.0.0.1:{server.port} as VMSDBD"
    code, rest_of_stdout, log = server.stop(sig)
    assert code == 0
    assert rest_of_stdout == "", "stdout carries the listening line only; logs go to stderr"
    assert "trusting 'SIMCLIENT' from 127.0.0.1 (C-MOVE port 51403)" in log


def test_demo_daemon_answers_echoscu_and_explains_a_stranger(served: list[Served]) -> None:
    echoscu = find_dcmtk("echoscu")
    if echoscu is None:
        pytest.skip("DCMTK echoscu is not installed; tests/test_dcmtk.py reports it in CI")
    server = Served("--demo", "--ae-title", "MYDAEMON")
    served.append(server)
    port = str(server.port)
    ok = subprocess.run([echoscu, "-aet", "SIMCLIENT", "-aec", "MYDAEMON", "127.0.0.1", port])
    refused = subprocess.run(
        [echoscu, "-aet", "STRANGER", "-aec", "MYDAEMON", "127.0.0.1", port],
        capture_output=True,
        text=True,
    )
    code, _, log = server.stop()
    assert ok.returncode == 0
    assert refused.returncode != 0
    assert "calling ae title not recognized" in refused.stderr.lower()
    (line,) = [line for line in log.splitlines() if "STRANGER" in line]
    assert "add it under [[trusted]] with ae_title = 'STRANGER', ip = '127.0.0.1'" in line
    assert line.endswith("(--trust STRANGER@127.0.0.1:PORT)"), "serve names its own flag"
    assert "Accepting Association" not in log, "pynetdicom's INFO steps stay out of the log"
    assert code == 0


def test_trust_option_replaces_the_demo_client(served: list[Served]) -> None:
    server = Served("--demo", "--trust", "MYCLIENT@127.0.0.1:104")
    served.append(server)
    _, _, log = server.stop()
    assert "trusting 'MYCLIENT' from 127.0.0.1 (C-MOVE port 104)" in log
    assert "SIMCLIENT" not in log


def test_config_file_is_read_and_options_override_it(tmp_path: Path, served: list[Served]) -> None:
    path = tmp_path / "site.toml"
    path.write_text('[daemon]\nae_title = "FROMFILE"\nport = 51402\n')
    server = Served("--config", str(path))
    served.append(server)
    assert server.line.endswith(" as FROMFILE")
    assert server.port != 51402, "--port 0 overrides the file"
    server.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ae-title", "A" * 17], 'daemon.ae_title = "AAAAAAAAAAAAAAAAA" is not allowed'),
        (["--trust", "NOPORT@127.0.0.1"], '--trust = "NOPORT@127.0.0.1" is not allowed'),
        (["--trust", "X@not-an-ip:104"], 'trusted[1].ip = "not-an-ip" is not allowed'),
        (["--config", "/nonexistent/site.toml"], "/nonexistent/site.toml: cannot read it"),
    ],
)
def test_configuration_errors_exit_2_without_traceback(args: list[str], message: str) -> None:
    done = subprocess.run(
        simdaemon("serve", "--port", "0", *args), capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""


def test_config_example_loads_back(tmp_path: Path) -> None:
    done = subprocess.run(simdaemon("config", "--example"), capture_output=True, text=True)
    assert done.returncode == 0
    path = tmp_path / "example.toml"
    path.write_text(done.stdout)
    checked = subprocess.run(
        simdaemon("config", "--check", str(path)), capture_output=True, text=True
    )
    assert checked.returncode == 0
    assert config.loads(checked.stdout, tmp_path) == config.load(path)


def _write_objects(folder: Path) -> dict[str, Path]:
    """Two objects of one patient, one conflicting with it, one not DICOM at all."""
    folder.mkdir()
    first = objects.ct(PatientName="Müller^Jürgen", SpecificCharacterSet="ISO_IR 100")
    files = {
        "first": folder / "a" / "first.dcm",
        "second": folder / "a" / "second.dcm",
        "conflict": folder / "b" / "conflict.dcm",
        "notes": folder / "notes.txt",
    }
    for path in files.values():
        path.parent.mkdir(exist_ok=True)
    first.save_as(files["first"], enforce_file_format=True)
    second = objects.same_patient(first, objects.ct(SpecificCharacterSet="ISO_IR 100"))
    second.save_as(files["second"], enforce_file_format=True)
    objects.ct(PatientName="Other^Person").save_as(files["conflict"], enforce_file_format=True)
    files["notes"].write_text("not an image")
    return files


def test_import_runs_files_through_the_rules_and_patients_lists_them(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        '[daemon]\narchive = "archive"\n'
        '[patient_creation]\nhospital = "UAB"\ndepartment = "Radiation Oncology"\n'
    )
    files = _write_objects(tmp_path / "incoming")

    done = subprocess.run(
        simdaemon("import", str(tmp_path / "incoming"), "--config", str(site)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert done.returncode == 1, "a failed object makes the import fail"
    lines = done.stdout.splitlines()
    assert f"skipped {files['notes']}: not a DICOM file" in lines[0]
    (failure,) = [line for line in lines if line.startswith("FAILED")]
    assert failure.startswith(f"FAILED 0xC002 {files['conflict']}: Patient ID 'PAT001' belongs")
    assert lines[-1].startswith("imported 2 of 3 object(s) into ")
    assert "1 failed and parked in" in lines[-1]
    assert list((tmp_path / "failed").glob("*.reason.txt"))

    listed = subprocess.run(
        simdaemon("patients", "--config", str(site)), capture_output=True, text=True, timeout=30
    )
    assert listed.returncode == 0
    header, row = listed.stdout.splitlines()
    assert header.split() == ["Patient", "ID", "Name", "Birth", "date", "Sex", "Hospital", "/",
                              "Department", "Studies", "Series", "Instances"]  # fmt: skip
    assert row.split() == ["PAT001", "Müller^Jürgen", "19600101", "M", "UAB", "/", "Radiation",
                           "Oncology", "1", "1", "2"]  # fmt: skip


def test_import_as_a_trusted_entity_uses_its_import_charset(tmp_path: Path) -> None:
    site = tmp_path / "site.toml"
    site.write_text(
        '[daemon]\narchive = "archive"\n[[trusted]]\nae_title = "PLANNING"\nip = "127.0.0.1"\n'
        'port = 104\nimport_charset = "ISO_IR 100"\n'
    )
    ds = objects.ct()
    ds.add_new(0x00100010, "PN", "Müller^Jürgen".encode("latin-1"))
    ds.save_as(tmp_path / "latin1.dcm", enforce_file_format=True)

    command = ["import", str(tmp_path / "latin1.dcm"), "--config", str(site), "--as", "PLANNING"]
    done = subprocess.run(simdaemon(*command), capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stdout + done.stderr
    with Archive(tmp_path / "archive") as archive:
        assert [p.name for p in archive.patients()] == ["Müller^Jürgen"]
        assert [e.operation for e in archive.audit_events()] == ["import"]


def test_patients_as_json_gives_one_exact_object_per_patient(tmp_path: Path) -> None:
    archive = tmp_path / "archive"
    seeded = subprocess.run(
        simdaemon("seed", "--patients", "2", "--slices", "2", "--matrix", "8",
                  "--archive", str(archive)),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stderr
    done = subprocess.run(
        simdaemon("patients", "--archive", str(archive), "--json"),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    with Archive(archive) as stored:
        expected = stored.patients()
    assert [row["patient_id"] for row in rows] == ["SYN000000", "SYN000001"]
    assert [row["name"] for row in rows] == [p.name for p in expected]
    assert rows[0]["instances"] == expected[0].instances == 2 + 6


def test_patients_without_an_archive_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        simdaemon("patients", "--archive", str(tmp_path / "none")), capture_output=True, text=True
    )
    assert done.returncode == 1
    assert f"no archive at {tmp_path / 'none'}" in done.stderr


def test_import_of_a_missing_path_names_it(tmp_path: Path) -> None:
    done = subprocess.run(
        simdaemon("import", str(tmp_path / "nothing"), "--archive", str(tmp_path / "a")),
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"{tmp_path / 'nothing'}: no such file or folder" in done.stderr


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda folder: None, "no files in"),
        (lambda folder: (folder / "notes.txt").write_text("not DICOM"), "none of them DICOM"),
    ],
    ids=["empty-folder", "not-dicom"],
)
def test_import_that_stores_nothing_fails_and_says_why(
    tmp_path: Path, make: Callable[[Path], object], why: str
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    make(folder)
    done = subprocess.run(
        simdaemon("import", str(folder), "--archive", str(tmp_path / "a")),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    assert "simdaemon: nothing imported: " in done.stderr
    assert why in done.stderr


def test_version_is_the_installed_distributions() -> None:
    done = subprocess.run(simdaemon("--version"), capture_output=True, text=True, timeout=30)
    assert done.returncode == 0
    assert done.stdout.strip() == f"simdaemon {metadata.version('simdaemon')}"
    from simdaemon import __version__

    assert __version__ == metadata.version("simdaemon")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_draws_on_a_terminal_only() -> None:
    terminal = _Terminal()
    bar = Progress(4, "importing", terminal)
    for failed in (False, True, False, False):
        bar.advance(failed=failed)
    bar.close()
    assert terminal.getvalue().rstrip("\n").split("\r")[-1] == (
        "importing [##############################] 4/4  1 failed"
    )
    piped = io.StringIO()
    quiet = Progress(2, "importing", piped)
    quiet.advance()
    quiet.close()
    assert piped.getvalue() == ""


def test_seed_fills_an_archive_with_synthetic_patients_reproducibly(tmp_path: Path) -> None:
    def seed(folder: Path) -> list[str]:
        done = subprocess.run(
            simdaemon("seed", "--patients", "2", "--seed", "5", "--slices", "4", "--matrix",
                      "32", "--archive", str(folder)),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.startswith(f"seeded 2 patient(s), 20 object(s), into {folder}")
        with Archive(folder) as archive:
            return [f"{p.patient_id} {p.name} {p.instances}" for p in archive.patients()]

    first, second = seed(tmp_path / "a"), seed(tmp_path / "b")
    assert first == second
    assert [line.split()[0] for line in first] == ["SYN000005", "SYN000006"]
    assert all(line.endswith(" 10") for line in first)


def test_demo_archive_holds_synthetic_patients(served: list[Served]) -> None:
    server = Served("--demo")
    served.append(server)
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "PATIENT"
    identifier.PatientID = ""
    identifier.PatientName = ""
    listening = _Listening("127.0.0.1", server.port, "VMSDBD")
    found, final = scu.find(listening, identifier, "patient")
    code, _, _ = server.stop()
    assert final.Status == 0
    assert sorted(str(ds.PatientID) for ds in found) == ["SYN000000", "SYN000001", "SYN000002"]
    assert code == 0


@dataclass
class _Listening:
    host: str
    port: int
    ae_title: str


def test_demo_says_what_it_seeds_where_and_how_to_look(served: list[Served]) -> None:
    server = Served("--demo")
    served.append(server)
    assert server.line.startswith(LISTENING)
    code, _, err = server.stop()
    assert code == 0
    seeding = next(line for line in err.splitlines() if line.startswith("seeding "))
    archive = seeding.rsplit(" into ", 1)[1]
    assert seeding.startswith("seeding 3 synthetic patients (20 CT slices of 256 x 256")
    assert f"demo archive: {archive}" in err
    assert "trusted entity: SIMCLIENT calling from 127.0.0.1" in err
    assert f"  simdaemon patients --archive {archive}" in err
    assert f"  echoscu -aet SIMCLIENT -aec VMSDBD 127.0.0.1 {server.port}" in err


def test_serve_without_trusted_entities_warns_at_start(
    tmp_path: Path, served: list[Served]
) -> None:
    server = Served("--archive", str(tmp_path / "archive"))
    served.append(server)
    assert server.line.startswith(LISTENING)
    _, _, err = server.stop()
    assert "no trusted entities: every association will be rejected; add one with --trust " in err


def test_a_port_in_use_names_the_flag_to_change(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            simdaemon("serve", "--port", port, "--archive", str(tmp_path / "a")),
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
    assert "[daemon] port (0 picks a free one) or host (--port, --host)" in done.stderr


def test_demo_with_an_archive_uses_it_seeds_it_once_and_names_it(
    served: list[Served], tmp_path: Path
) -> None:
    folder = tmp_path / "demo"
    for run in range(2):
        server = Served("--demo", "--archive", str(folder))
        served.append(server)
        assert server.line.startswith(LISTENING)
        code, _, log = server.stop()
        assert code == 0
        assert f"archive: {folder}" in log.splitlines(), f"run {run}"
    with Archive(folder) as archive:  # kept after exit, and seeded once, not twice
        assert [p.patient_id for p in archive.patients()] == [
            "SYN000000",
            "SYN000001",
            "SYN000002",
        ]


def test_without_a_config_failed_imports_are_parked_in_the_archive(tmp_path: Path) -> None:
    _write_objects(tmp_path / "incoming")
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run(
        simdaemon("import", str(tmp_path / "incoming"), "--archive", str(tmp_path / "arch")),
        capture_output=True, text=True, timeout=60, cwd=work,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-1].endswith(
        f"1 failed and parked in {tmp_path / 'arch' / 'failed'}, 1 skipped)"
    )
    assert len(list((tmp_path / "arch" / "failed").glob("*.reason.txt"))) == 1
    assert list(work.iterdir()) == [], "nothing written to the working directory"


def test_yielding_to_the_dicom_side_sets_the_switch_interval_and_restores_it() -> None:
    """The helper ``serve`` wraps the console's start in: 0.5 ms inside, the interval as it
    was afterwards, also when the console fails to start. (That ``serve`` uses it, and what
    it saves, is benchmarks/startup.py's to show.)"""
    from simdaemon import cli

    before = sys.getswitchinterval()
    seen: list[float] = []

    def start_console() -> None:
        with cli._yielding_to_the_dicom_side():
            seen.append(sys.getswitchinterval())
            raise RuntimeError("the console port is taken")

    with pytest.raises(RuntimeError):
        start_console()
    assert seen == [pytest.approx(0.0005)]
    assert sys.getswitchinterval() == before
