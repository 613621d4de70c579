"""The README's client example runs as shown, against a daemon like `serve --demo`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from simdaemon.cli import DEMO_MATRIX, DEMO_SLICES
from simdaemon.config import loads
from simdaemon.pytest_plugin import TestDaemon, import_patient
from simdaemon.synthetic import synthetic_patient

pytestmark = pytest.mark.slow  # runs the README's examples in subprocesses

README = Path(__file__).resolve().parent.parent / "README.md"


def example() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- client-example -->\n```python\n(.*?)```", text, re.DOTALL)
    assert match, "the README lost its client example"
    return match.group(1)


def test_the_readme_client_example_runs_as_shown(simdaemon: TestDaemon, tmp_path: Path) -> None:
    """The demo's patient and plan; the demo's addresses swapped for this test's ephemeral ones.

    The example's client is the test entity, whose port the plugin reserved: the client's
    embedded receiver takes it over for the move to itself.
    """
    entity = simdaemon.test_entity
    import_patient(simdaemon, synthetic_patient(0, slices=DEMO_SLICES, matrix=DEMO_MATRIX))
    code = (
        example()
        .replace(
            '"SIMCLIENT", "127.0.0.1", 51403', f'"{entity.ae_title}", "127.0.0.1", {entity.port}'
        )
        .replace(
            '"VMSDBD", "127.0.0.1", 51402', f'"{simdaemon.ae_title}", "127.0.0.1", {simdaemon.port}'
        )
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    files = DEMO_SLICES + 3  # CT slices, structure set, plan, dose
    assert done.stdout.endswith(f"{files} files: plan, structure set, CT slices and doses\n")
    assert len(list((tmp_path / "export").iterdir())) == files


def fenced(marker: str, language: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker} -->\n```{language}\n(.*?)```", text, re.DOTALL)
    assert match, f"the README lost its {marker} block"
    return match.group(1)


def test_the_readme_flaky_daemon_examples_pass_as_shown(tmp_path: Path) -> None:
    """Every fault example is a test of its own; run the file as a user would, with pytest."""
    module = tmp_path / "test_flaky.py"
    module.write_text(fenced("flaky-example", "python"), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "no:randomly", str(module)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    examples = fenced("flaky-example", "python").count("\ndef test_")
    assert f"{examples} passed" in done.stdout


def test_the_readme_faults_configuration_loads() -> None:
    config = loads(fenced("flaky-config", "toml"))
    assert [rule.describe() for rule in config.faults] == [
        "store: delay 500 ms, every time with probability 0.5 (seed 1)",
        "move: drop 0.3 of the sub-operations silently, every time",
        "associate: refuse transiently, the first time only",
    ]
