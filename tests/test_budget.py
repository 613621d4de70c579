"""A query's budget and C-CANCEL: what raises when, and that the lookup stops on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom.dataset import Dataset

from simdaemon import lookup
from simdaemon.archive import Archive, NewInstance, NewSeries, NewStudy
from simdaemon.budget import Budget, Cancelled, OverBudget, Stopped
from simdaemon.matching import Demographics
from simdaemon.query import compile_query


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_budget_raises_once_its_seconds_have_passed() -> None:
    clock = Clock()
    budget = Budget(2.0, clock=clock)
    clock.now += 2.0
    budget.check()  # exactly at the budget: still within it
    clock.now += 0.01
    with pytest.raises(OverBudget, match=r"^query stopped after its 2 s budget$"):
        budget.check()


def test_cancel_is_asked_at_most_every_interval_and_wins() -> None:
    clock = Clock()
    asked: list[float] = []

    def cancelled() -> bool:
        asked.append(clock.now)
        return len(asked) == 2

    budget = Budget(60.0, cancelled, clock=clock)
    for _ in range(10):
        budget.check()  # no time passes: the cancel test is not asked
    assert asked == []
    clock.now += 2 * Budget.CANCEL_EVERY
    budget.check()
    clock.now += 2 * Budget.CANCEL_EVERY
    with pytest.raises(Cancelled):
        budget.check()
    assert len(asked) == 2


ROWS = 300


@pytest.fixture
def many(tmp_path: Path) -> Iterator[Archive]:
    """One series of :data:`ROWS` instances, none with stored attributes to match."""
    with Archive(tmp_path / "m") as archive:
        with archive.transaction() as tx:
            patient = tx.add_patient(Demographics("MANY"), "Many^Rows", "O", "", "")
            series = tx.add_series(tx.add_study(patient, NewStudy("1.9")), NewSeries("1.9.1"))
            for number in range(ROWS):
                uid = f"1.9.1.{number}"
                instance = NewInstance(uid, "1.2.3", "1.2.840.10008.1.2.1")
                tx.index_instance(series, instance, f"files/{uid}.dcm", b"")
        yield archive


def python_filtered() -> Dataset:
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "IMAGE"
    identifier.PatientID = "MANY"
    identifier.RTPlanLabel = "NOPE"  # matched in Python: no row passes
    return identifier


def test_lookup_checks_between_rows_it_filters_out(many: Archive) -> None:
    calls = 0

    def check() -> None:
        nonlocal calls
        calls += 1
        if calls == 50:
            raise Cancelled("query cancelled by C-CANCEL")

    rows = lookup.find(many, compile_query(python_filtered(), "study"), check)
    with pytest.raises(Cancelled):
        next(rows)
    assert calls == 50  # stopped at once, not after the other rows


def test_lookup_stops_inside_sqlite_through_the_progress_handler(
    many: Archive, monkeypatch: pytest.MonkeyPatch
) -> None:
    inside: list[bool] = []

    def check() -> None:
        inside.append(True)
        raise OverBudget("query stopped after its 0 s budget")

    monkeypatch.setattr(lookup, "PROGRESS_STEPS", 1)  # called before SQLite has a first row

    rows = lookup.find(many, compile_query(python_filtered(), "study"), check)
    with pytest.raises(Stopped, match="budget"):  # not SQLite's "interrupted"
        next(rows)
    assert inside == [True]
    # The pooled read connection works afterwards, without the handler.
    assert list(lookup.find(many, compile_query(python_filtered(), "study"))) == []
    identifier = python_filtered()
    del identifier.RTPlanLabel
    assert len(list(lookup.find(many, compile_query(identifier, "study")))) == ROWS


def test_a_moves_lookups_take_the_same_check(many: Archive) -> None:
    def check() -> None:
        raise OverBudget("query stopped after its 0 s budget")

    compiled = compile_query(python_filtered(), "study")
    with pytest.raises(OverBudget):
        next(lookup.instances(many, compiled, check))
    with pytest.raises(OverBudget):
        lookup.extent(many, compiled, check)
    assert lookup.extent(many, compiled).objects == 0  # without a check: counted to the end
