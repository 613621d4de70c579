"""Every rule the daemon can refuse, fail or abort by has advice on the Activity page.

The rule names are found in the source, not listed again here: a string literal given as a
``rule=`` argument or as the default of a ``rule`` field or parameter, and a kebab-case
literal passed to any call (the refusal constructors take the rule first). A new rule
without a sentence in :data:`simdaemon.console.advice.ADVICE` fails this test, naming the
rule and its file.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import simdaemon
from simdaemon.console.advice import ADVICE, advice
from simdaemon.findings import RULES
from simdaemon.reporting import fix_of

PACKAGE = Path(simdaemon.__file__).parent
#: Where rule names are not refusals: the console itself, the findings (each carries its
#: own fix), and the configuration and command line (option values, not audit rules).
NOT_RULES_IN = ("console", "findings.py", "config.py", "cli.py", "completion.py")
KEBAB = re.compile(r"^[a-z]+(-[a-z0-9]+)+$")
#: Kebab-case literals passed to calls that are not audit rules, with why.
NOT_RULES = {
    "utf-8": "a codec name",
    "abstract-syntax": "why a presentation context was refused (a finding's evidence)",
    "unknown-ae": "a file name's stand-in for an unprintable AE title",
}


def _literal(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def rule_names() -> dict[str, str]:
    """Every rule name in the package's source, with the file it first appears in."""
    found: dict[str, str] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE).as_posix()
        if relative.startswith(NOT_RULES_IN):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str | None] = []
            if isinstance(node, ast.Call):
                names += [_literal(k.value) for k in node.keywords if k.arg == "rule"]
                names += [s for a in node.args if (s := _literal(a)) and KEBAB.match(s)]
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                if node.target.id == "rule":
                    names.append(_literal(node.value))
            elif isinstance(node, ast.arguments):
                named = [*node.posonlyargs, *node.args]
                defaulted = named[len(named) - len(node.defaults) :]  # defaults are the last
                pairs = [
                    *zip(defaulted, node.defaults, strict=True),
                    *zip(node.kwonlyargs, node.kw_defaults, strict=True),
                ]
                names += [_literal(value) for arg, value in pairs if arg.arg == "rule"]
            for name in names:
                if name and name not in NOT_RULES and name not in RULES:
                    found.setdefault(name, relative)
    return found


def test_the_scan_finds_the_rules_of_every_layer() -> None:
    names = rule_names()
    # One from each way a rule is named: keyword, field default, positional argument.
    assert {"calling-ae", "patient-creation", "malformed-pdu", "tag-order"} <= set(names)
    assert len(names) >= 30, names


def test_every_refusing_rule_has_advice() -> None:
    missing = {name: where for name, where in rule_names().items() if name not in ADVICE}
    assert not missing, f"rules without a sentence in console/advice.py ADVICE: {missing}"


def test_no_advice_for_a_rule_that_no_longer_exists() -> None:
    stale = set(ADVICE) - set(rule_names())
    assert not stale, f"ADVICE names rules the daemon no longer has: {sorted(stale)}"


def test_a_finding_advises_its_own_fix_and_success_advises_nothing() -> None:
    detail = "message 3: PatientName 'A; fix: B' has '?'; fix: send ISO_IR 192"
    assert fix_of(detail) == "send ISO_IR 192"
    refused = detail + ' (refused: [findings] fail_on = "portability")'
    assert advice("finding", "portability", "text-charset-mismatch", refused) == "send ISO_IR 192"
    assert fix_of("no marker here") == ""
    assert advice("store", "success", "patient-creation") == ""
    assert advice("associate", "refused", "pdu-size") == ADVICE["pdu-size"]
    assert advice("fault", "fired", "store") == ADVICE["fault"]
