"""Layer boundaries kept by a test rather than by review: only the archive layer writes SQL.

The archive layer is :mod:`simdaemon.archive` (schema, joins, writes, readers) and
:mod:`simdaemon.lookup` (queries compiled to SQL, typed rows). Every other module of the
package - query.py, the services, anything added later, in any sub-package - speaks DICOM or
Python and reaches the database only through them. The check reads the source: string
literals (f-strings included, docstrings left out) that read as an SQL statement or clause,
and calls of a database cursor's ``execute``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import simdaemon

PACKAGE = Path(simdaemon.__file__).resolve().parent
#: The modules that may write SQL, relative to the package.
ARCHIVE_LAYER = frozenset({"archive.py", "lookup.py"})

#: SQL as this code base writes it: keywords in capitals, in statements or their clauses.
SQL = re.compile(
    r"""
      \bSELECT\b .* \bFROM\b
    | \bINSERT \s+ (?:OR \s+ [A-Z]+ \s+)? INTO\b
    | \bUPDATE \s+ \w+ \s+ SET\b
    | \bDELETE \s+ FROM\b
    | \b(?:CREATE|DROP|ALTER) \s+ (?:TABLE|INDEX|VIEW|TRIGGER)\b
    | \bPRAGMA \s+ \w+
    | \bCASE \s+ (?:WHEN\b|[\w.]+ \s+ WHEN\b)
    | \bJOIN \s+ \w+ \s+ \w+ \s+ ON\b
    | \bWHERE \s+ [\w.]+ \s* (?:=|<|>|\bIN\b|\bGLOB\b|\bLIKE\b|\bIS\b)
    | \bGROUP \s+ BY\b | \bORDER \s+ BY\b
    """,
    re.VERBOSE | re.DOTALL,
)
EXECUTE = frozenset({"execute", "executemany", "executescript"})


def _docstrings(tree: ast.AST) -> set[int]:
    """The ids of the docstring nodes of a module, its classes and functions."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def sql_in(source: str) -> list[str]:
    """What in ``source`` writes SQL: ``line N: text`` for each literal or execute call."""
    tree = ast.parse(source)
    skipped = _docstrings(tree)
    found: list[str] = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.JoinedStr):
            parts = node.values
            skipped.update(id(part) for part in parts)
            text = "".join(part.value if isinstance(part, ast.Constant) else "{}" for part in parts)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value if id(node) not in skipped else None
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in EXECUTE
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
        if text is not None and SQL.search(text):
            found.append(f"line {node.lineno}: {' '.join(text.split())[:80]}")
    return found


def modules() -> list[str]:
    """Every module of the package, relative to it (sub-packages included)."""
    return sorted(path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py"))


@pytest.mark.parametrize(
    "source",
    [
        'rows = db.execute("SELECT id FROM patients WHERE patient_id = ?", (pid,))',
        'sql = f"SELECT {columns} FROM {tables}"',
        'x = ("INSERT INTO audit (time, detail) " "VALUES (?, ?)")',
        'SQL = f"DELETE FROM {table}"',
        'x = "UPDATE series SET user_origin_x = ?"',
        'x = "CREATE INDEX studies_patient ON studies (patient)"',
        "x = \"CASE r.modality WHEN 'RTPLAN' THEN 'ARIA RadOnc Plans' END\"",
        "x = \"CASE WHEN s.study_id <> '' THEN s.study_id END\"",
        'x = f"studies s JOIN patients p ON p.id = s.patient"',
        'x = "s.id = ? ORDER BY s.id"',
        "connection.execute(statement)",
    ],
)
def test_the_check_finds_sql(source: str) -> None:
    assert sql_in(source), "a check that cannot fail guards nothing"


@pytest.mark.parametrize(
    "source",
    [
        'def f() -> None:\n    """Run a SELECT ... FROM patients WHERE ... against the archive."""',
        'message = "select a folder from the list, then where to put it"',
        'CREATE = "create"',
        'detail = "C-FIND at STUDY level: 3 match(es)"',
        'x = "IMAGE-level move without SeriesInstanceUID refused"',
        "ready = selector.select()",
    ],
)
def test_the_check_leaves_prose_and_docstrings_alone(source: str) -> None:
    assert sql_in(source) == []


@pytest.mark.parametrize("module", sorted(set(modules()) - ARCHIVE_LAYER))
def test_only_the_archive_layer_writes_sql(module: str) -> None:
    found = sql_in((PACKAGE / module).read_text(encoding="utf-8"))
    assert not found, (
        f"simdaemon/{module} writes SQL ({'; '.join(found)}); only the archive layer "
        f"({', '.join(sorted(ARCHIVE_LAYER))}) may: compile constraints in simdaemon/lookup.py, "
        "or add a method to simdaemon/archive.py"
    )


@pytest.mark.parametrize("module", sorted(ARCHIVE_LAYER))
def test_the_archive_layer_is_where_the_sql_is(module: str) -> None:
    """The exemption names modules that exist and write SQL: it cannot go stale silently."""
    assert sql_in((PACKAGE / module).read_text(encoding="utf-8"))
