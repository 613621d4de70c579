"""What the ``simdaemon`` command imports: only what it needs, and the library nothing early.

Each check runs in a fresh interpreter, since what a process has imported is the point.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_importing_the_package_imports_no_dicom_library_until_a_name_is_used() -> None:
    out = run(
        "import sys, simdaemon\n"
        "print('pydicom' in sys.modules, 'pynetdicom' in sys.modules)\n"
        "from simdaemon import Daemon, Config, __version__\n"
        "print(Daemon.__module__, Config.__module__, bool(__version__), 'Daemon' in dir(simdaemon))"
    )
    assert out.splitlines() == ["False False", "simdaemon.server simdaemon.config True True"]


def test_an_unknown_name_is_an_attribute_error() -> None:
    import simdaemon

    with pytest.raises(AttributeError, match="no attribute 'Deamon'"):
        _ = simdaemon.Deamon  # type: ignore[attr-defined]


def test_the_command_skips_pydicoms_optional_imports_and_pydicom_still_works() -> None:
    out = run(
        "import sys\n"
        "from simdaemon.launch import main\n"
        "assert main(['config', '--example']) == 0\n"
        "import pydicom.data.download, pynetdicom\n"
        "from pydicom import Dataset\n"
        "ds = Dataset(); ds.PatientName = 'A^B'\n"
        "print(sorted(n for n in ('numpy', 'requests', 'tqdm') if sys.modules.get(n)))\n"
    )
    assert out.splitlines()[-1] == "[]"


def test_the_library_leaves_numpy_requests_and_tqdm_to_the_user() -> None:
    out = run(
        "import sys\nfrom simdaemon import Daemon\nimport simdaemon.cli\n"
        "print([n for n in ('numpy', 'requests', 'tqdm') if n in sys.modules "
        "and sys.modules[n] is None])"
    )
    assert out == "[]", "importing the library marked an optional module absent"


#: What the services load on their first request (simdaemon.services), not at start.
DEFERRED = (
    "simdaemon.query",
    "simdaemon.lookup",
    "simdaemon.matching",
    "simdaemon.importer",
    "simdaemon.services.find",
    "simdaemon.services.move",
    "simdaemon.services.store",
    "simdaemon.synthetic",
)


def test_a_daemon_answers_its_first_echo_without_loading_find_store_or_move_then_serves_them(
    tmp_path: Path,
) -> None:
    out = run(
        "import sys\nfrom pathlib import Path\nimport simdaemon.cli, simdaemon.launch\n"
        "from pydicom.dataset import Dataset\n"
        "from pynetdicom import AE\n"
        "from simdaemon.config import Config, DaemonSettings, TrustedEntity\n"
        "from simdaemon.server import Daemon\n"
        f"deferred = {DEFERRED!r}\n"
        f"config = Config(daemon=DaemonSettings(port=0, archive=Path({str(tmp_path)!r})),\n"
        "                trusted=(TrustedEntity('PROBE', '127.0.0.1', 1),))\n"
        "with Daemon(config) as daemon:\n"
        "    ae = AE(ae_title='PROBE')\n"
        "    ae.add_requested_context('1.2.840.10008.1.1')\n"
        "    study_root = '1.2.840.10008.5.1.4.1.2.2.1'\n"
        "    ae.add_requested_context(study_root)\n"
        "    assoc = ae.associate('127.0.0.1', daemon.port, ae_title=daemon.ae_title)\n"
        "    print(assoc.send_c_echo().Status)\n"
        "    print(sorted(m for m in deferred if m in sys.modules))\n"
        "    query = Dataset(); query.QueryRetrieveLevel = 'STUDY'; query.PatientID = 'X'\n"
        "    print([s.Status for s, _ in assoc.send_c_find(query, study_root)])\n"
        "    assoc.release()\n"
        "    print('simdaemon.services.find' in sys.modules, 'simdaemon.query' in sys.modules)\n"
        "    print([m for m in ('simdaemon.importer', 'simdaemon.matching') if m in sys.modules])\n"
        "    daemon.raise_errors()\n"
    )
    # a daemon only queried never loads the import pipeline
    assert out.splitlines() == ["0", "[]", "[0]", "True True", "[]"]


def test_the_console_loads_neither_the_services_nor_faker_until_a_request_needs_them() -> None:
    out = run(
        "import sys\nimport simdaemon.console.app\n"
        f"print(sorted(m for m in (*{DEFERRED!r}, 'faker') if m in sys.modules))"
    )
    assert out == "[]"
