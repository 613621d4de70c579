"""Text a peer sent, made safe to show to a person: control characters escaped.

A newline in a Patient ID would otherwise forge a line in the daemon's log or in
``simdaemon audit``, and an ANSI escape in a patient name would reach the reader's terminal
raw. Every human-readable output passes what it shows through :func:`printable`; JSON output
stays exact (JSON escapes control characters itself).

Escaped are C0 (U+0000-U+001F, ESC included), DEL, C1 (U+0080-U+009F) and the Unicode line
and paragraph separators (which :meth:`str.splitlines` and some log viewers take as line
breaks). Each becomes ``\\xNN`` (``\\uNNNN`` above U+00FF). Backslashes are left alone: DICOM
separates values with them, and an escaped-looking sequence can no longer break a line.
"""

from __future__ import annotations

import logging
import re
import traceback
from types import TracebackType

__all__ = ["CONTROL", "EscapingFilter", "EscapingFormatter", "install", "printable"]

#: One control character, as :func:`printable` escapes them.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

_ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None] | tuple[None, None, None]


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: str) -> str:
    """Return ``text`` with every control character escaped; one line, shown as sent."""
    return CONTROL.sub(_escape, text)


class EscapingFilter(logging.Filter):
    """Escape control characters in a record's message, before any handler formats it.

    Installed on the daemon's loggers (:func:`install`), so a log line is one line whatever
    handler the embedding program (pytest, a user's script) attaches.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Replace the message by its escaped, fully formatted text; keep every record."""
        message = record.getMessage()
        escaped = printable(message)
        if escaped != message:
            record.msg, record.args = escaped, None
        return True


class EscapingFormatter(logging.Formatter):
    """A formatter whose lines are each one record: control characters escaped.

    The message line is escaped whole. A traceback keeps its line breaks, but every line of
    it is indented, so no text inside an exception can pass for a record of its own.
    """

    def formatMessage(self, record: logging.LogRecord) -> str:
        """Format as usual, then escape."""
        return printable(super().formatMessage(record))

    def formatException(self, ei: _ExcInfo) -> str:
        """The traceback with control characters escaped and its lines indented."""
        text = "".join(traceback.format_exception(*ei)).rstrip("\n")
        return "\n".join(f"  {printable(line)}" for line in text.split("\n"))

    def formatStack(self, stack_info: str) -> str:
        """The stack, indented and escaped like a traceback."""
        return "\n".join(f"  {printable(line)}" for line in stack_info.split("\n"))


_FILTER = EscapingFilter()


def install(prefix: str = "simdaemon") -> None:
    """Put :class:`EscapingFilter` on the logger ``prefix`` and every logger below it.

    A logger's filters apply only to records logged on that logger itself, not to those
    propagated from below, hence one filter per existing logger. Idempotent; loggers made
    later (a module imported afterwards) get it at the next call.
    """
    names = [
        name
        for name in list(logging.root.manager.loggerDict)
        if name == prefix or name.startswith(f"{prefix}.")
    ]
    for name in [prefix, *names]:
        logger = logging.getLogger(name)
        if _FILTER not in logger.filters:
            logger.addFilter(_FILTER)
