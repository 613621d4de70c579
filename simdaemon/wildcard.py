"""DICOM wildcard matching (PS3.4 C.2.2.2.4) in linear space and O(pattern x value) time.

``*`` matches any run of characters (none included), ``?`` any one character; every other
character matches itself, case-sensitively. Translating ``*`` into a regular expression's
``.*`` backtracks catastrophically: ``*a*a*a*a*a*a*a*b`` against 64 characters took 23 s and
held the interpreter meanwhile. The greedy two-pointer matcher here remembers only the last
``*`` seen; when a later literal fails it retries from one character further along the value.
That is enough because a later ``*`` can absorb whatever an earlier one would have, so no
other backtracking point can lead to a match this one misses. Pure; no I/O.
"""

from __future__ import annotations

__all__ = ["is_wild", "wildcard_match"]


def is_wild(value: str) -> bool:
    """Whether ``value`` holds a wildcard character (``*`` or ``?``)."""
    return "*" in value or "?" in value


def wildcard_match(pattern: str, value: str) -> bool:
    """Whether the whole of ``value`` matches the DICOM wildcard ``pattern``."""
    p = v = 0
    star = -1  # position in pattern of the last '*' seen, -1 before any
    resume = 0  # position in value that star's run currently ends at
    plen, vlen = len(pattern), len(value)
    while v < vlen:
        if p < plen and pattern[p] == "*":
            star, resume = p, v
            p += 1
        elif p < plen and (pattern[p] == "?" or pattern[p] == value[v]):
            p += 1
            v += 1
        elif star >= 0:
            # Let the last '*' take one more character and try the rest from there.
            resume += 1
            p, v = star + 1, resume
        else:
            return False
    while p < plen and pattern[p] == "*":
        p += 1
    return p == plen
