"""Every code example in the README and docs/ runs as shown, or says why it does not.

The convention, for the documents' authors: a fenced ``python``, ``toml``, ``sh`` or
``powershell`` block is preceded by an HTML comment on the line before its fence, either
``<!-- example: NAME -->`` (a test below runs or loads it; ``EXAMPLES`` lists the names) or
``<!-- not run: REASON -->`` (the reason is shown in the document's source). An example block
without a marker, a name without a test, or a test whose example has gone fails here.
Output and help text go in ``text`` blocks, which are not examples.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from simdaemon import config as configuration
from simdaemon import faults
from simdaemon.cli import DEMO_MATRIX, DEMO_SLICES
from simdaemon.config import loads
from simdaemon.pytest_plugin import TestDaemon, import_patient
from simdaemon.synthetic import synthetic_patient
from tests.conftest import CLIENT, MakeDaemon

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
CODE = ("python", "toml", "sh", "powershell")
FENCE = re.compile(
    r"^(?:<!-- (?P<kind>example|not run): *(?P<label>.*?) *-->\n)?"
    r"```(?P<language>[\w-]*)\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class Block:
    document: Path
    kind: str | None  # "example", "not run" or None
    label: str  # the example's name, or why it is not run
    language: str
    code: str

    def __str__(self) -> str:
        return f"{self.document.relative_to(ROOT)}: ```{self.language} {self.label}".rstrip()


def blocks() -> list[Block]:
    return [
        Block(path, m["kind"], m["label"] or "", m["language"], m["code"])
        for path in DOCUMENTS
        for m in FENCE.finditer(path.read_text(encoding="utf-8"))
    ]


def examples(name: str) -> list[Block]:
    found = [b for b in blocks() if b.kind == "example" and b.label == name]
    assert found, f"no document has the example {name!r} any more"
    return found


def example(name: str) -> str:
    """The code of an example; every copy of it (README and docs) must be the same."""
    codes = {b.code for b in examples(name)}
    assert len(codes) == 1, f"the copies of example {name!r} differ: {examples(name)}"
    return codes.pop()


def run_pytest_file(code: str, folder: Path) -> None:
    """Run an example that is a test module as a user would, with pytest; all its tests pass."""
    module = folder / "test_example.py"
    module.write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "-p", "no:randomly", str(module)],
        cwd=folder, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert f"{code.count(chr(10) + 'def test_')} passed" in done.stdout, done.stdout[-3000:]


# --- the convention -------------------------------------------------------------------------


def test_every_code_block_is_an_example_or_says_why_it_is_not_run() -> None:
    unmarked = [str(b) for b in blocks() if b.language in CODE and b.kind is None]
    assert not unmarked, "mark these <!-- example: NAME --> or <!-- not run: REASON -->"
    unexplained = [str(b) for b in blocks() if b.kind == "not run" and not b.label]
    assert not unexplained, "say why these are not run"


def test_every_example_has_a_test_and_every_test_its_example() -> None:
    named = {b.label for b in blocks() if b.kind == "example"}
    assert named == set(EXAMPLES), "EXAMPLES in tests/test_docs.py lists the tested names"


def test_the_setup_commands_are_the_first_sh_block_of_the_readme() -> None:
    """.ci/run runs the two lines under these comments of the README's first ```sh block."""
    first = next(b for b in blocks() if b.language == "sh")
    assert first.document.name == "README.md"
    lines = first.code.splitlines()
    assert lines[0].startswith("# Run the daemon")
    assert "simdaemon serve --demo" in lines[1]
    assert lines[3].startswith("# Run the tests")
    assert lines[4].endswith("&& tox")


# --- the generated reference ---------------------------------------------------------------


def hooks() -> ModuleType:
    """docs/hooks.py, the MkDocs hook that writes the generated parts of the reference."""
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec
    assert spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_generated_part_is_asked_for_and_exists() -> None:
    """A page asking for an unknown part fails the site's build; this says so in the fast loop,
    and that no part is generated for nobody."""
    made = hooks()
    asked = {
        name for path in DOCUMENTS for name in made.PLACEHOLDER.findall(path.read_text("utf-8"))
    }
    assert asked == set(made.PARTS)


def test_the_configuration_reference_names_every_key_with_its_comment() -> None:
    page = hooks().configuration()
    for table in (*configuration._TABLES.values(), configuration.TrustedEntity):
        for field in dataclasses.fields(table):
            assert f"| `{field.name}` |" in page
            assert field.metadata["doc"].replace("|", "\\|") in page
    assert configuration.example() in page


def test_the_fault_reference_names_every_operation_and_key() -> None:
    page = hooks().faults()
    for operation in faults.OPERATIONS:
        assert f"| `{operation}` |" in page
    for field in dataclasses.fields(faults.Fault):
        assert f"| `{field.name}` |" in page
    assert "`delay_ms`: wait before serving" in page  # the docstring's definition list
    assert "``" not in page  # reStructuredText literals became Markdown


def test_the_findings_reference_has_every_rule_with_why_fix_and_a_log_line() -> None:
    from simdaemon.findings import RULES

    page = hooks().findings()
    for rule in RULES.values():
        section = page.split(f"## `{rule.name}`", 1)[1].split("\n## ", 1)[0]
        assert f"Severity: **{rule.severity}**" in section
        assert "**Why**:" in section
        assert "**Fix**:" in section
        assert f"finding {rule.name} (" in section, "an example log line made by the rule"
    assert "``" not in page.replace("```", ""), "reStructuredText literals became Markdown"


def test_the_cli_reference_has_every_sub_command() -> None:
    made = hooks()
    page = made.cli_simdaemon() + made.cli_client()
    for command in ("serve", "import", "seed", "audit", "patients", "config", "completion"):
        assert f"### `simdaemon {command}`" in page
    for command in ("echo", "find", "retrieve", "export-plan"):
        assert f"### `python -m dbdaemon_client {command}`" in page


# --- the examples ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["client"])
def test_the_client_example_runs_as_shown(name: str, simdaemon: TestDaemon, tmp_path: Path) -> None:
    """The demo's patient and plan; the demo's addresses swapped for this test's ephemeral ones.

    The example's client is the test entity, whose port the plugin reserved: the client's
    embedded receiver takes it over for the move to itself.
    """
    entity = simdaemon.test_entity
    import_patient(simdaemon, synthetic_patient(0, slices=DEMO_SLICES, matrix=DEMO_MATRIX))
    code = (
        example(name)
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
    tutorial = (ROOT / "docs" / "tutorial" / "first-hour.md").read_text(encoding="utf-8")
    assert f"`{files} files: plan, structure set, CT slices and doses`" in tutorial


@pytest.mark.slow
def test_the_client_shell_commands_run_as_shown(simdaemon: TestDaemon, tmp_path: Path) -> None:
    """The demo's first two patients; `...` and the demo's addresses become this test's.

    Each command exits 0, and the comments under one are the output it prints ("(...)"
    stands for the patient's name)."""
    for seed in (0, 1):
        patient = synthetic_patient(seed, slices=DEMO_SLICES, matrix=DEMO_MATRIX)
        import_patient(simdaemon, patient)
    entity = simdaemon.test_entity
    ours = (
        f"--local {entity.ae_title}@127.0.0.1:{entity.port} "
        f"--daemon {simdaemon.ae_title}@127.0.0.1:{simdaemon.port}"
    )
    shown = "--local SIMCLIENT@127.0.0.1:51403 --daemon VMSDBD@127.0.0.1:51402"
    outputs: list[tuple[str, list[str]]] = []
    for line in example("client-shell").splitlines():
        if line.startswith("# "):
            outputs[-1][1].append(line[2:])
        else:
            command = line.split("  #")[0].replace(shown, ours).replace(" ... ", f" {ours} ")
            assert command.startswith("python -m dbdaemon_client --local "), line
            outputs.append((command, []))
    for command, said in outputs:
        argv = [sys.executable, *command.split()[1:]]
        done = subprocess.run(
            argv, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )  # fmt: skip
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        for expected in said:
            pattern = re.escape(expected).replace(re.escape("(...)"), r"\(.*\)")
            assert re.search(f"^{pattern}$", done.stdout, re.MULTILINE), (expected, done.stdout)


@pytest.mark.slow
def test_the_python_tour_runs_as_shown(tmp_path: Path) -> None:
    """A daemon on an ephemeral port, a client storing into it, a stranger refused."""
    done = subprocess.run(
        [sys.executable, "-c", example("python-tour")],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "add 'STRANGER' with this machine's IP address and port 51404" in done.stdout
    assert "PatientRow(patient_id='SYN000000'" in done.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    "name", ["flaky-tests", "readme-pytest", "pytest-first-tests", "factories", "plugin-own-ae"]
)
def test_the_pytest_examples_pass_as_shown(name: str, tmp_path: Path) -> None:
    """Each is a test module of its own; run it as a user would, with pytest."""
    run_pytest_file(example(name), tmp_path)


def test_the_toml_examples_load() -> None:
    for block in blocks():
        if block.kind == "example" and block.language == "toml":
            loads(block.code)  # a ConfigError names the key, the value and what is allowed


def test_the_flaky_configuration_says_what_it_does() -> None:
    config = loads(example("flaky-config"))
    assert [rule.describe() for rule in config.faults] == [
        "store: delay 500 ms, every time with probability 0.5 (seed 1)",
        "move: drop 0.3 of the sub-operations silently, every time",
        "associate: refuse transiently, the first time only",
    ]


def test_the_ci_configuration_trusts_the_test_suite() -> None:
    config = loads(example("ci-config"))
    assert (config.daemon.ae_title, config.daemon.host, config.daemon.port) == (
        "VMSDBD", "127.0.0.1", 51402
    )  # fmt: skip
    assert [(e.ae_title, e.ip, e.port) for e in config.trusted] == [("MYTESTS", "127.0.0.1", 51403)]


@pytest.mark.slow
@pytest.mark.dcmtk
def test_the_demo_echoscu_lines_do_what_their_comments_say(
    dcmtk: Callable[[str], str], make_daemon: MakeDaemon, caplog: pytest.LogCaptureFixture
) -> None:
    """The demo's entities on an ephemeral port: SIMCLIENT is answered, STRANGER is rejected
    and the daemon's WARNING line is the one the comment shows."""
    daemon = make_daemon(trusted=[CLIENT])
    code = example("demo-echoscu")
    commands = [line.split("#")[0].split() for line in code.splitlines() if line[:1] != "#"]
    comments = [line.lstrip("# ").strip() for line in code.splitlines() if line[:1] == "#"]
    results = []
    for command in commands:
        assert command[0] == "echoscu"
        assert command[-2:] == ["127.0.0.1", "51402"]
        argv = [dcmtk("echoscu"), *command[1:-1], str(daemon.port)]
        results.append(subprocess.run(argv, capture_output=True, text=True, timeout=30))
    assert [done.returncode == 0 for done in results] == [True, False]
    logged = [
        f"{r.levelname} {r.name}: {r.getMessage()}"
        for r in caplog.records
        if r.name == "simdaemon.server" and r.levelname == "WARNING"
    ]
    assert " ".join(comments) in logged


@pytest.mark.slow
def test_the_import_commands_run_as_shown(tmp_path: Path) -> None:
    """In a fresh folder holding the repository's fixtures/, with the installed commands."""
    (tmp_path / "fixtures").symlink_to(ROOT / "fixtures")
    scripts = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": scripts + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(
        ["bash", "-e", "-c", example("import-files")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "SYN000000" in done.stdout


@pytest.mark.slow
@pytest.mark.simdaemon(console=True)
def test_the_console_curl_lines_do_what_they_say(simdaemon: TestDaemon) -> None:
    """Against a console on an ephemeral port: reset, trust, fault, then the audit as JSON."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    assert simdaemon.console is not None
    import_patient(simdaemon, synthetic_patient(0, slices=1, matrix=16))
    code = example("console-curl").replace(
        "http://127.0.0.1:51404", simdaemon.console.url.rstrip("/")
    )
    done = subprocess.run(
        ["bash", "-e", "-c", code], capture_output=True, text=True, timeout=60
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert simdaemon.archive.count() == 0, "reset emptied the archive"
    assert "MYTESTS" in {e.ae_title for e in simdaemon.trusted}
    (rule,) = simdaemon.faults.rules
    assert (rule.operation, rule.status, rule.times) == ("store", 0xA700, 1)
    assert done.stdout.rstrip().endswith("[]"), "no fault fired yet: an empty JSON list"


#: Every example name in the documents, and the test that runs it.
EXAMPLES: dict[str, Callable[..., None]] = {
    "client": test_the_client_example_runs_as_shown,
    "python-tour": test_the_python_tour_runs_as_shown,
    "client-shell": test_the_client_shell_commands_run_as_shown,
    "flaky-tests": test_the_pytest_examples_pass_as_shown,
    "readme-pytest": test_the_pytest_examples_pass_as_shown,
    "pytest-first-tests": test_the_pytest_examples_pass_as_shown,
    "factories": test_the_pytest_examples_pass_as_shown,
    "plugin-own-ae": test_the_pytest_examples_pass_as_shown,
    "flaky-config": test_the_flaky_configuration_says_what_it_does,
    "ci-config": test_the_ci_configuration_trusts_the_test_suite,
    "demo-echoscu": test_the_demo_echoscu_lines_do_what_their_comments_say,
    "import-files": test_the_import_commands_run_as_shown,
    "console-curl": test_the_console_curl_lines_do_what_they_say,
}
