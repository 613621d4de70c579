"""Control characters a peer sends never reach a log line or the audit text raw (item 8)."""

from __future__ import annotations

import io
import json
import logging
import sys
from datetime import UTC, datetime

import pytest

from simdaemon.audit import AuditEvent
from simdaemon.printable import EscapingFilter, EscapingFormatter, install, printable

FORGED = "ID1\n2026-12-01 10:00:00 INFO simdaemon.access: accepted 'ADMIN'"
ANSI = "\x1b[2J\x1b[31mDoe^John"


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Doe^John", "Doe^John"),
        ("Müller^Jürgen=山田", "Müller^Jürgen=山田"),
        ("a\nb\rc\td", "a\\x0ab\\x0dc\\x09d"),
        ("\x00\x1b\x7f\x85\x9b", "\\x00\\x1b\\x7f\\x85\\x9b"),
        ("line\u2028sep", "line\\u2028sep"),
        ("1\\2", "1\\2"),
    ],
)
def test_printable_escapes_control_characters_only(text: str, shown: str) -> None:
    assert printable(text) == shown
    assert printable(shown) == shown  # escaping twice changes nothing


def _record(message: str, *args: object, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError(FORGED)
        except ValueError:
            exc_info = sys.exc_info()
    return logging.LogRecord("simdaemon.x", logging.WARNING, __file__, 1, message, args, exc_info)


def test_formatter_keeps_each_record_on_its_own_lines() -> None:
    formatter = EscapingFormatter("%(levelname)s %(name)s: %(message)s")
    line = formatter.format(_record("import of '%s' failed", FORGED))
    assert "\n" not in line
    assert line == f"WARNING simdaemon.x: import of '{printable(FORGED)}' failed"
    with_traceback = formatter.format(_record("failed", exc=True))
    first, *rest = with_traceback.split("\n")
    assert first == "WARNING simdaemon.x: failed"
    assert rest
    assert all(line.startswith("  ") for line in rest)


def test_filter_escapes_the_message_before_any_handler() -> None:
    record = _record("name %s", ANSI)
    assert EscapingFilter().filter(record)
    assert record.getMessage() == "name \\x1b[2J\\x1b[31mDoe^John"


def test_install_reaches_every_simdaemon_logger_not_others() -> None:
    child = logging.getLogger("simdaemon.test_printable.child")
    other = logging.getLogger("elsewhere.test_printable")
    install()
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(message)s"))  # a plain one, as a user's
    logging.getLogger("simdaemon").addHandler(handler)
    other.addHandler(handler)
    try:
        child.warning("patient %s", FORGED)
        other.warning("x\ny")
    finally:
        logging.getLogger("simdaemon").removeHandler(handler)
        other.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines == [f"patient {printable(FORGED)}", "x", "y"]


def test_audit_text_is_escaped_and_json_exact() -> None:
    event = AuditEvent(
        time=datetime(2026, 12, 1, tzinfo=UTC),
        operation="store",
        calling_ae="EVIL\x1b[31m",
        called_ae="VMSDBD",
        peer="127.0.0.1:1",
        outcome="failure",
        detail=f"Patient ID '{FORGED}'",
    )
    text = event.describe()
    assert "\n" not in text
    assert "\x1b" not in text
    assert printable(FORGED) in text
    assert json.loads(json.dumps(event.as_dict()))["detail"] == f"Patient ID '{FORGED}'"


def test_error_comments_have_no_control_characters_or_backslashes() -> None:
    from simdaemon.importer import _comment

    assert _comment("text not valid in \\ISO 2022 IR 87 replaced") == (
        "text not valid in /ISO 2022 IR 87 replaced"
    )
    assert _comment("bad 'A\nB\x1b[31m' é") == "bad 'A?B?[31m' ?"
    assert len(_comment("x" * 100)) == 64
