"""The linear wildcard matcher agrees with fnmatch's ``*``/``?`` and never backtracks badly."""

from __future__ import annotations

import random
import re

import pytest

from simdaemon.wildcard import is_wild, wildcard_match


def _reference(pattern: str, value: str) -> bool:
    """The same semantics through a regular expression (slow on bad patterns, right on small)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("", "", True),
        ("", "a", False),
        ("*", "", True),
        ("*", "anything at all", True),
        ("?", "", False),
        ("?", "x", True),
        ("a*b", "ab", True),
        ("a*b", "axxxb", True),
        ("a*b", "axxxbc", False),
        ("*b", "abab", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("[x]", "[x]", True),  # brackets are not wild in DICOM
        ("DOE*", "doe^john", False),  # case-sensitive: PN folding happens before
        ("**a**", "bab", True),
        ("*a*a*a*a*a*a*a*b", "a" * 64, False),
    ],
)
def test_wildcard_matches_whole_values(pattern: str, value: str, expected: bool) -> None:
    assert wildcard_match(pattern, value) is expected


def test_wildcard_agrees_with_a_regex_on_random_inputs() -> None:
    rng = random.Random(20261201)
    for _ in range(5000):
        value = "".join(rng.choice("ab^") for _ in range(rng.randrange(0, 9)))
        pattern = "".join(rng.choice("ab^*?") for _ in range(rng.randrange(0, 7)))
        assert wildcard_match(pattern, value) is _reference(pattern, value), (pattern, value)


def test_pathological_pattern_is_answered_without_backtracking() -> None:
    # Thousands of stars against a long value stay a bounded loop (regex: effectively forever).
    pattern = "*a" * 2000 + "*b"
    assert wildcard_match(pattern, "a" * 4000) is False
    assert wildcard_match(pattern, "a" * 2000 + "b") is True


def test_is_wild_sees_star_and_question_mark_only() -> None:
    assert is_wild("AB*")
    assert is_wild("A?")
    assert not is_wild("A[B]%_")
