"""Fixture factories, in the style of pytest-postgresql: daemons of any scope, configured once.

``conftest.py``::

    from simdaemon import factories

    course_daemon = factories.daemon(scope="module", patient_creation={"automatic": False})

    def test_export(course_daemon):
        ...

A factory-made daemon is configured as the ``simdaemon_factory`` fixture's (``[daemon]`` fields
as keywords, other tables as dicts, ``trusted=[...]``, ``faults=[...]``), trusts its own test
entity (``daemon.test_entity``) unless ``trusted`` says otherwise, has its own temporary
archive and ephemeral port, and is stopped when its scope ends; an exception on one of its
threads then fails the last test of the scope. It is not reset between tests: call
``daemon.reset()`` where a test needs an empty archive.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import pytest

from simdaemon.pytest_plugin import Settings
from simdaemon.testing import TestDaemon, daemon_lifetime

__all__ = ["daemon"]

Scope = Literal["session", "package", "module", "class", "function"]


def daemon(*, scope: Scope = "function", **options: Any) -> Callable[..., Iterator[TestDaemon]]:
    """A fixture giving a daemon started once per ``scope``, configured by ``options``."""

    @pytest.fixture(scope=scope)
    def made(
        tmp_path_factory: pytest.TempPathFactory, simdaemon_settings: Settings
    ) -> Iterator[TestDaemon]:
        yield from daemon_lifetime(tmp_path_factory, simdaemon_settings, **options)

    return made
