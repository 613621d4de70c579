"""What the ``simdaemon`` command imports: only what it needs, and the library nothing early.

Each check runs in a fresh interpreter, since what a process has imported is the point.
"""

from __future__ import annotations

import subprocess
import sys

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
