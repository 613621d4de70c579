"""Shell completion: the generated script completes what the parser accepts, in a real bash."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from simdaemon import cli
from simdaemon.completion import commands_and_options

pytestmark = pytest.mark.slow  # runs bash and the command line in subprocesses

BASH = shutil.which("bash")


def complete(words: list[str]) -> list[str]:
    """What bash offers for the last word of ``words`` with the generated script loaded."""
    script = subprocess.run(
        [sys.executable, "-m", "simdaemon", "completion", "bash"],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    quoted = " ".join(f"'{word}'" for word in words)
    program = (
        f"{script}\nCOMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        '_simdaemon_complete; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    assert BASH is not None
    done = subprocess.run([BASH, "-c", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return sorted(line for line in done.stdout.splitlines() if line)


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
def test_bash_completes_commands_and_each_commands_options() -> None:
    assert complete(["simdaemon", "se"]) == ["seed", "serve"]
    assert complete(["simdaemon", "serve", "--p"]) == ["--port"]
    assert complete(["simdaemon", "patients", "--"]) == ["--archive", "--config", "--help",
                                                         "--json"]  # fmt: skip


def test_every_subcommand_and_option_of_the_parser_is_in_the_table() -> None:
    parser = cli._parser()
    table = commands_and_options(parser)
    assert "--version" in table[""]
    for name in ("serve", "import", "seed", "audit", "patients", "config", "completion"):
        assert "--help" in table[name]
    assert "--demo" in table["serve"]
    assert "--as" in table["import"]
