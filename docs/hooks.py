"""MkDocs hook: the reference pages' generated parts, made from the code so they cannot drift.

A page asks for a part with an HTML comment on a line of its own, ``<!-- generated: NAME -->``;
``on_page_markdown`` replaces it with ``PARTS[NAME]()`` before MkDocs renders the page. An
unknown NAME fails the build. The parts read what the program itself reads:

- ``configuration``: the dataclass fields of ``simdaemon.config`` with the ``doc`` metadata
  that ``simdaemon config --example`` writes as comments, and that example itself;
- ``faults``: ``simdaemon.faults``'s module docstring (the vocabulary), its ``OPERATIONS``,
  what each operation can be matched on and how far it can ``abort_after``, and the fields of
  ``Fault`` with their defaults;
- ``cli-simdaemon`` and ``cli-client``: the ``--help`` of both commands and of every
  sub-command, from their argparse parsers;
- ``findings``: every rule of ``simdaemon.findings.RULES``, its severity and its docstring
  (what, *Why*, *Fix*), with a log line made by running the rule on an example request.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
from collections.abc import Callable
from typing import Any

PLACEHOLDER = re.compile(r"^<!-- generated: ([a-z-]+) -->$", re.MULTILINE)
HELP_WIDTH = "100"  # argparse wraps --help to $COLUMNS; fixed, so the page is the same anywhere


def rst_to_markdown(text: str) -> str:
    """The reStructuredText of this project's docstrings as Markdown: literals, roles, and
    definition lists (a term, then its description indented) as a bulleted list."""
    text = re.sub(r":(?:class|func|mod|meth|attr):`~?([^`]+)`", r"`\1`", text)
    text = re.sub(r"``(.+?)``", r"`\1`", text, flags=re.DOTALL)
    out: list[str] = []
    lines = inspect.cleandoc(text).splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        following = lines[i + 1] if i + 1 < len(lines) else ""
        if line and not line.startswith(" ") and following.startswith("    "):
            body = []
            i += 1
            while i < len(lines) and lines[i].startswith("    "):
                body.append(lines[i].strip())
                i += 1
            out.append(f"- {line.strip()}: {' '.join(body)}")
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def _cell(value: object) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
        return "required"
    from simdaemon.config import _toml_value  # the same spelling as `config --example`

    value = f.default if f.default is not dataclasses.MISSING else f.default_factory()
    return "(none)" if value is None else f"`{_toml_value(value)}`"


def _summary(cls: type[Any]) -> str:
    doc = inspect.getdoc(cls) or ""
    return rst_to_markdown(doc.split("\n\n", 1)[1]) if "\n\n" in doc else ""


def configuration() -> str:
    from simdaemon import config

    parts = []
    defaults = config.Config()
    for table in dataclasses.fields(config.Config):
        value = getattr(defaults, table.name)
        if dataclasses.is_dataclass(value):
            cls, header = type(value), f"[{table.name}]"
        elif table.name == "trusted":
            cls, header = config.TrustedEntity, "[[trusted]]"
        else:
            parts.append(f"## `[[{table.name}]]`\n\nInjected faults in force from the start, "
                         "one table per rule: see [Injected faults](faults.md).\n")
            continue
        title = (inspect.getdoc(cls) or "").split("\n", 1)[0]
        title = rst_to_markdown(title).split(": ", 1)[-1]
        rows = [
            f"| `{f.name}` | {_default(f)} | {_cell(f.metadata['doc'])} |"
            for f in dataclasses.fields(cls)
        ]
        parts.append("\n".join([
            f"## `{header}`", "", title[:1].upper() + title[1:], "", _summary(cls), "",
            "| key | default | meaning |", "|---|---|---|", *rows, "",
        ]))  # fmt: skip
    example = config.example()
    parts.append(
        "## The example\n\n`simdaemon config --example` prints this: the defaults, and one "
        f"trusted client. It loads back unchanged.\n\n```toml\n{example}```\n"
    )
    return "\n".join(parts)


def faults() -> str:
    from simdaemon import faults as rules

    matchable = rules._MATCHABLE  # what each operation's requests carry
    limits = rules._ABORT_LIMITS
    rows = []
    for operation in rules.OPERATIONS:
        if operation not in limits:
            abort = "not allowed"
        else:
            most = limits[operation]
            abort = "0 or more" if most is None else "0 only" if most == 0 else f"0 to {most}"
        keys = ", ".join(f"`{key}`" for key in matchable[operation])
        rows.append(f"| `{operation}` | {keys} | {abort} |")
    fields = [
        f"| `{f.name}` | {_default(f)} |" for f in dataclasses.fields(rules.Fault)
    ]
    return "\n".join([
        rst_to_markdown(rules.__doc__ or ""), "",
        "## Operations", "",
        "A rule that matches on a key its operation does not carry is refused when it is made: "
        "it could never fire.", "",
        "| operation | can be matched on | `abort_after` |", "|---|---|---|", *rows, "",
        "## Keys and defaults", "",
        "| key | default |", "|---|---|", *fields, "",
    ])  # fmt: skip


def _helps(prog: str, parser: argparse.ArgumentParser) -> str:
    parts = [f"## `{prog}`\n\n```text\n{parser.format_help()}```\n"]
    for action in parser._actions:  # argparse has no public walk of its sub-commands
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                parts.append(f"### `{prog} {name}`\n\n```text\n{sub.format_help()}```\n")
    return "\n".join(parts)


def cli_simdaemon() -> str:
    from simdaemon import cli

    return _helps("simdaemon", cli._parser())


def cli_client() -> str:
    from dbdaemon_client import cli

    return _helps(cli.PROG, cli._parser())


def _examples() -> dict[str, Any]:
    """One finding per rule, made by the rule itself from an example of the client bug."""
    from simdaemon import findings as f

    text = f.TextValue("PatientName", ("ISO_IR 192",), True, "Lon^Marie", "Léon^Marie")
    proposal = f.ContextProposal("1.2.840.10008.5.1.4.1.2.2.3",
                                 "Study Root Query/Retrieve Information Model - GET",
                                 ["Implicit VR Little Endian"], "abstract-syntax")  # fmt: skip
    end = f.AssociationEnd(True, 3, ["CT Image Storage", "Verification SOP Class"],
                           ["CT Image Storage"])  # fmt: skip
    return {
        "move-universal-unique-key": f.move_universal_unique_key(f.QueryRequest(
            "move", "study", "STUDY", {"PatientID": "P1", "StudyInstanceUID": ""},
            would_move="1 patient, 3 studies, 78 objects")),
        "query-missing-parent-unique-key": f.query_missing_parent_unique_key(
            f.QueryRequest("find", "study", "SERIES", {"Modality": "CT"})),
        "query-matches-ignored-key": f.query_matches_ignored_key(f.QueryRequest(
            "find", "study", "IMAGE", {"NumberOfBeams": "0"}, ignored=["NumberOfBeams"])),
        "text-charset-mismatch": f.text_charset_mismatch(text),
        "store-without-charset-non-ascii": f.store_without_charset_non_ascii(
            f.TextValue("(0010,0010)", (), True, "", non_ascii=True)),
        "overlapping-dimse": f.overlapping_dimse(1),
        "abort-instead-of-release": f.abort_instead_of_release(end),
        "association-per-request-churn": f.association_per_request_churn("SCRIPT", 25, 10),
        "unused-presentation-contexts": f.unused_presentation_contexts(end),
        "refused-presentation-context": f.refused_presentation_context(proposal),
        "move-destination-is-requester-without-listener":
            f.move_destination_is_requester_without_listener(
                f.MoveFailure("SCRIPT", "SCRIPT", "127.0.0.1:104", True)),
    }  # fmt: skip


def findings() -> str:
    from simdaemon import findings as rules

    examples = _examples()
    intro = rules.__doc__ or ""
    parts = [rst_to_markdown(intro.split("\n\n", 1)[1] if "\n\n" in intro else intro), ""]
    parts += ["| rule | severity |", "|---|---|"]
    parts += [f"| [`{r.name}`](#{r.name}) | {r.severity} |" for r in rules.RULES.values()]
    parts.append("")
    for rule in rules.RULES.values():
        what, _, rest = rule.doc.partition("\n\n")
        body = rst_to_markdown(rest).replace("*Why*:", "\n**Why**:").replace(
            "*Fix*:", "\n**Fix**:"
        )
        example = examples[rule.name]
        line = (
            f"finding {example.rule} ({example.severity}) from 'SCRIPT': {example.evidence}; "
            f"fix: {example.fix}"
        )
        parts += [
            f"## `{rule.name}`", "", f"Severity: **{rule.severity}** (at most). {what}", "",
            body.strip(), "", "Example log line:", "", f"```text\n{line}\n```", "",
        ]  # fmt: skip
    return "\n".join(parts)


PARTS: dict[str, Callable[[], str]] = {
    "findings": findings,
    "configuration": configuration,
    "faults": faults,
    "cli-simdaemon": cli_simdaemon,
    "cli-client": cli_client,
}


def on_page_markdown(markdown: str, **_: object) -> str:
    """Replace each ``<!-- generated: NAME -->`` line with its part."""
    os.environ["COLUMNS"] = HELP_WIDTH
    return PLACEHOLDER.sub(lambda found: PARTS[found.group(1)]().rstrip("\n"), markdown)


SPHINX_ROLE = re.compile(r":(?:class|func|mod|meth|attr|exc|data):(?=<code>)")


def on_page_content(html: str, **_: object) -> str:
    """Drop the Sphinx roles (``:class:`X```) the docstrings use, which mkdocstrings leaves in
    front of the literal it renders."""
    return SPHINX_ROLE.sub("", html)
