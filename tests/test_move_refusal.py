"""Moves that cannot over-reach (issue 13): a C-MOVE without a value of its level's unique key.

By default such a move is refused with 0xC000 and an Error Comment counting what it would have
moved, before any connection to the destination; ``[quirks] move_universal_match = true``
moves it all. The rule itself (:func:`simdaemon.query.universal_key`) and the wording are
tested first, without sockets; then the daemon, over pynetdicom, against the known archive.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from simdaemon import Daemon
from simdaemon.config import ConfigError, example, loads
from simdaemon.query import COMMENT_LIMIT, Extent, How, Level, UniversalKey, universal_key
from simdaemon.services import move as move_service
from tests import known as known_archive
from tests import objects, scu
from tests.conftest import CLIENT, MakeDaemon
from tests.receiver import Receiver

WILDCARD_UID = pytest.mark.filterwarnings("ignore:Invalid value for VR UI")


# --- the rule, without sockets ---------------------------------------------------------------

UNIQUE = {
    Level.PATIENT: "PatientID",
    Level.STUDY: "StudyInstanceUID",
    Level.SERIES: "SeriesInstanceUID",
    Level.IMAGE: "SOPInstanceUID",
}


@WILDCARD_UID
@pytest.mark.parametrize("level", list(Level), ids=lambda level: level.name)
@pytest.mark.parametrize(
    ("value", "how"),
    [
        (None, "absent"),
        ("", "empty"),
        ("*", "wildcard"),
        ("?*", "wildcard"),
        ("1.2.*", "wildcard"),
        ("1.2.3?", "wildcard"),
        ("1.2.3\\*", "wildcard"),  # a list with a wildcard in it: no wildcards in unique keys
    ],
)
def test_a_unique_key_without_a_value_is_universal(
    level: Level, value: str | None, how: How
) -> None:
    keyword = UNIQUE[level]
    keys = {} if value is None else {keyword: value}
    found = universal_key(scu.identifier(level.name, **keys), level)
    assert found == UniversalKey(level, keyword, how, (value or "") if how == "wildcard" else "")


@pytest.mark.parametrize("level", list(Level), ids=lambda level: level.name)
@pytest.mark.parametrize("value", ["1.2.3", "1.2.3\\1.2.4", "1.2.3\\1.2.4\\1.2.5", "\\"])
def test_a_value_or_a_list_of_values_is_not_universal(level: Level, value: str) -> None:
    """A UID list names objects; ``\\`` matches only empty stored values (never a unique key)."""
    assert universal_key(scu.identifier(level.name, **{UNIQUE[level]: value}), level) is None


def test_only_the_levels_own_unique_key_counts() -> None:
    """Keys of the levels above narrow the move, but do not name the objects of the level."""
    above = scu.identifier("STUDY", PatientID="PAT-A", StudyInstanceUID="")
    assert universal_key(above, Level.STUDY) == UniversalKey(
        Level.STUDY, "StudyInstanceUID", "empty"
    )
    doses = scu.identifier("IMAGE", StudyInstanceUID="1.2.3", SOPClassUID=objects.RT_DOSE)
    assert universal_key(doses, Level.IMAGE) == UniversalKey(
        Level.IMAGE, "SOPInstanceUID", "absent"
    )
    below = scu.identifier("SERIES", SeriesInstanceUID="1.2.3", SOPInstanceUID="")
    assert universal_key(below, Level.SERIES) is None


def test_a_key_present_without_a_value_is_empty_not_absent() -> None:
    ds = scu.identifier("STUDY")
    ds.StudyInstanceUID = None
    assert universal_key(ds, Level.STUDY) == UniversalKey(Level.STUDY, "StudyInstanceUID", "empty")


@pytest.mark.parametrize(
    ("extent", "words"),
    [
        (Extent(1, 1, 1, 1), "1 patient, 1 study, 1 series, 1 object"),
        (Extent(3, 3, 5, 78), "3 patients, 3 studies, 5 series, 78 objects"),
        (Extent(0, 0, 0, 0), "0 patients, 0 studies, 0 series, 0 objects"),
        (Extent(2, 1, 1, 1), "2 patients, 1 study, 1 series, 1 object"),
    ],
)
def test_counts_are_worded_singular_or_plural(extent: Extent, words: str) -> None:
    assert extent.describe(series=True) == words


def test_the_sentence_says_the_level_the_key_and_what_would_move() -> None:
    extent = Extent(3, 3, 5, 78)
    empty = UniversalKey(Level.STUDY, "StudyInstanceUID", "empty")
    assert empty.sentence(extent) == (
        "C-MOVE at STUDY level needs StudyInstanceUID; an empty value would move "
        "3 patients, 3 studies, 5 series, 78 objects"
    )
    absent = UniversalKey(Level.IMAGE, "SOPInstanceUID", "absent")
    assert "needs SOPInstanceUID; leaving it out would move" in absent.sentence(extent)
    wild = UniversalKey(Level.PATIENT, "PatientID", "wildcard", "PAT*")
    assert "needs PatientID; the wildcard value 'PAT*' would move" in wild.sentence(extent)


@pytest.mark.parametrize(
    ("universal", "extent", "comment"),
    [
        (
            UniversalKey(Level.PATIENT, "PatientID", "empty"),
            Extent(3, 3, 3, 78),
            "PatientID empty: would move 3 patients, 3 studies, 78 objects",
        ),
        (
            UniversalKey(Level.IMAGE, "SOPInstanceUID", "absent"),
            Extent(1, 1, 1, 1),
            "SOPInstanceUID absent: would move 1 patient, 1 study, 1 object",
        ),
        (  # too long with the studies: they go first
            UniversalKey(Level.STUDY, "StudyInstanceUID", "empty"),
            Extent(3, 3, 3, 78),
            "StudyInstanceUID empty: would move 3 patients, 78 objects",
        ),
        (  # then the patients
            UniversalKey(Level.SERIES, "SeriesInstanceUID", "wildcard", "*"),
            Extent(123456, 1234567, 2345678, 123456789),
            "SeriesInstanceUID wildcard: would move 123456789 objects",
        ),
    ],
)
def test_the_error_comment_fits_the_64_characters_of_lo(
    universal: UniversalKey, extent: Extent, comment: str
) -> None:
    assert universal.comment(extent) == comment
    assert len(comment) <= COMMENT_LIMIT


def test_the_quirk_is_in_the_example_configuration_and_loads() -> None:
    assert "move_universal_match = false" in example()
    line = next(li for li in example().splitlines() if li.startswith("move_universal_match"))
    assert "unique key is empty, absent or a wildcard" in line
    assert loads("[quirks]\nmove_universal_match = true").quirks.move_universal_match
    assert not loads("").quirks.move_universal_match
    with pytest.raises(ConfigError, match=r"quirks\.move_universal_match"):
        loads('[quirks]\nmove_universal_match = "yes"')


# --- the daemon ------------------------------------------------------------------------------


@pytest.fixture
def archive(make_daemon: MakeDaemon) -> known_archive.Known:
    """The known archive (3 patients, 4 studies, 8 series, 12 objects), stored in tmp_path."""
    known = known_archive.build()
    known_archive.store(make_daemon(), known)
    return known


def daemons(make_daemon: MakeDaemon, receivers: list[Receiver]) -> tuple[Daemon, Daemon, Receiver]:
    """A strict daemon and a lenient one on the same archive, both trusting one destination."""
    destination = Receiver().start()
    receivers.append(destination)
    trusted = [CLIENT, destination.entity()]
    strict = make_daemon(trusted=trusted)
    lenient = make_daemon(trusted=trusted, quirks={"move_universal_match": True})
    return strict, lenient, destination


def _resolve(known: known_archive.Known, keys: dict[str, str]) -> dict[str, str]:
    """``@name`` and ``@name/Keyword`` stand for a known object's UIDs, lists joined by ``\\``."""

    def one(value: str) -> str:
        name, _, keyword = value[1:].partition("/")
        return known.uid(name, keyword or "SOPInstanceUID")

    return {
        k: "\\".join(one(v) for v in value.split("\\")) if value.startswith("@") else value
        for k, value in keys.items()
    }


ALL = (3, 4, 8, 12)
A1 = "@ct1/StudyInstanceUID"
# (model, level, keys, how the unique key is wrong, (patients, studies, series, objects))
UNIVERSAL: list[tuple[str, str, dict[str, str], How, tuple[int, int, int, int]]] = [
    ("patient", "PATIENT", {}, "absent", ALL),
    ("patient", "PATIENT", {"PatientID": ""}, "empty", ALL),
    ("patient", "PATIENT", {"PatientID": "*"}, "wildcard", ALL),
    ("patient", "PATIENT", {"PatientID": "?*"}, "wildcard", ALL),
    ("patient", "PATIENT", {"PatientID": "PAT-?"}, "wildcard", (2, 3, 7, 11)),
    ("study", "STUDY", {}, "absent", ALL),
    ("study", "STUDY", {"StudyInstanceUID": ""}, "empty", ALL),
    ("study", "STUDY", {"StudyInstanceUID": "*"}, "wildcard", ALL),
    ("study", "STUDY", {"StudyInstanceUID": "?*"}, "wildcard", ALL),
    ("patient", "STUDY", {"PatientID": "PAT-A", "StudyInstanceUID": ""}, "empty", (1, 2, 6, 9)),
    ("study", "SERIES", {}, "absent", ALL),
    ("study", "SERIES", {"SeriesInstanceUID": ""}, "empty", ALL),
    ("study", "SERIES", {"StudyInstanceUID": A1, "SeriesInstanceUID": "*"}, "wildcard",
     (1, 1, 5, 8)),
    ("patient", "SERIES", {"PatientID": "PAT-B", "SeriesInstanceUID": "?*"}, "wildcard",
     (1, 1, 1, 2)),
    ("study", "IMAGE", {}, "absent", ALL),
    ("study", "IMAGE", {"SOPInstanceUID": ""}, "empty", ALL),
    ("study", "IMAGE", {"SeriesInstanceUID": "@ct1/SeriesInstanceUID", "SOPInstanceUID": "?*"},
     "wildcard", (1, 1, 1, 3)),
    ("patient", "IMAGE", {"PatientID": "PAT_C%", "SOPInstanceUID": "*"}, "wildcard",
     (1, 1, 1, 1)),
    # SPEC 7's non-unique move, all RT Doses of a study: refused too (the issue wins)
    ("study", "IMAGE", {"StudyInstanceUID": A1, "SOPClassUID": objects.RT_DOSE}, "absent",
     (1, 1, 1, 1)),
    # a key matched in the stored attributes: counted through the move's post-filter
    ("study", "IMAGE", {"StudyInstanceUID": A1, "RTPlanLabel": "PLAN1"}, "absent", (1, 1, 1, 1)),
]  # fmt: skip


def _case_id(case: tuple[str, str, dict[str, str], How, tuple[int, ...]]) -> str:
    model, level, keys, how, _ = case
    shown = ",".join(f"{k}={v}" for k, v in keys.items()) or "no-keys"
    return f"{model}-{level}-{how}-{shown}"


@WILDCARD_UID
@pytest.mark.parametrize(
    ("model", "level", "keys", "how", "counts"),
    [pytest.param(*case, id=_case_id(case)) for case in UNIVERSAL],
)
def test_a_universal_move_is_refused_with_what_it_would_move_and_the_quirk_moves_it(
    make_daemon: MakeDaemon,
    receivers: list[Receiver],
    archive: known_archive.Known,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    model: str,
    level: str,
    keys: dict[str, str],
    how: How,
    counts: tuple[int, int, int, int],
) -> None:
    strict, lenient, destination = daemons(make_daemon, receivers)
    request = scu.identifier(level, **_resolve(archive, keys))
    connect = move_service._connect

    def no_connection(*args: Any) -> None:
        raise AssertionError("a refused move connected to its destination")

    monkeypatch.setattr(move_service, "_connect", no_connection)
    with caplog.at_level(logging.INFO, logger="simdaemon.services.move"):
        pending, final, failed = scu.move(strict, request, "DEST", model)

    extent = Extent(*counts)
    key = UNIQUE[Level[level]]
    assert pending == []
    assert not failed  # no Failed SOP Instance UID List: nothing was attempted
    assert final.Status == 0xC000
    assert final.ErrorComment == UniversalKey(Level[level], key, how).comment(extent)
    assert final.ErrorComment.startswith(f"{key} {how}: would move ")
    assert final.ErrorComment.endswith(extent.describe(patients=False, studies=False))
    assert destination.received == []
    (event,) = strict.audit.events("move")
    assert (event.outcome, event.status, event.rule) == ("failure", 0xC000, "move_universal_match")
    assert f"C-MOVE at {level} level needs {key};" in event.detail
    assert f"would move {extent.describe(series=True)}; no connection was made" in event.detail
    assert "[quirks] move_universal_match = true" in event.detail
    (line,) = [r for r in caplog.records if r.name == "simdaemon.services.move"]
    assert line.levelno == logging.WARNING
    assert "\n" not in line.getMessage()
    assert f"would move {extent.describe(series=True)}" in line.getMessage()

    monkeypatch.setattr(move_service, "_connect", connect)
    _, final, _ = scu.move(lenient, request, "DEST", model)  # the quirk: lenient, moves it all
    assert final.Status == 0x0000
    assert final.NumberOfCompletedSuboperations == extent.objects
    arrived = [r.dataset for r in destination.received]
    assert len(arrived) == extent.objects
    assert len({ds.PatientID for ds in arrived}) == extent.patients
    assert len({ds.StudyInstanceUID for ds in arrived}) == extent.studies
    assert len({ds.SeriesInstanceUID for ds in arrived}) == extent.series
    (event,) = lenient.audit.events("move")
    assert "universal match allowed by [quirks] move_universal_match" in event.detail


# (model, level, keys naming objects by a UID list, the known objects that arrive)
LISTS = [
    ("patient", "PATIENT", {"PatientID": "PAT-B\\PAT_C%"}, {"mr1", "mr2", "ct_c"}),
    ("study", "STUDY", {"StudyInstanceUID": "@ct_a2/StudyInstanceUID\\@mr1/StudyInstanceUID"},
     {"ct_a2", "mr1", "mr2"}),
    ("study", "SERIES", {"SeriesInstanceUID": "@plan1/SeriesInstanceUID\\@dose/SeriesInstanceUID"},
     {"plan1", "plan2", "dose"}),
    ("study", "IMAGE", {"SOPInstanceUID": "@ct1\\@ct3\\@mr2"}, {"ct1", "ct3", "mr2"}),
    ("patient", "IMAGE", {"PatientID": "PAT-A", "SOPInstanceUID": "@rs"}, {"rs"}),
]  # fmt: skip


@pytest.mark.parametrize(
    ("model", "level", "keys", "expected"),
    [pytest.param(*case, id=f"{case[0]}-{case[1]}") for case in LISTS],
)
def test_a_list_of_real_unique_keys_is_not_universal_and_moves(
    make_daemon: MakeDaemon,
    receivers: list[Receiver],
    archive: known_archive.Known,
    model: str,
    level: str,
    keys: dict[str, str],
    expected: set[str],
) -> None:
    strict, _, destination = daemons(make_daemon, receivers)
    _, final, _ = scu.move(strict, scu.identifier(level, **_resolve(archive, keys)), "DEST", model)
    assert final.Status == 0x0000
    assert sorted(destination.uids()) == sorted(archive.uid(name) for name in expected)
    (event,) = strict.audit.events("move")
    assert event.rule == "move"
    assert "universal" not in event.detail


def test_a_universal_move_is_refused_even_when_nothing_would_move(
    make_daemon: MakeDaemon, receivers: list[Receiver], archive: known_archive.Known
) -> None:
    """The identifier is what is wrong, whatever the archive holds today."""
    strict, _, destination = daemons(make_daemon, receivers)
    request = scu.identifier("STUDY", PatientID="NOBODY", StudyInstanceUID="")
    _, final, _ = scu.move(strict, request, "DEST", "patient")
    assert final.Status == 0xC000
    assert final.ErrorComment == "StudyInstanceUID empty: would move 0 patients, 0 objects"
    assert destination.received == []


def test_an_unknown_destination_is_still_a801_first(
    make_daemon: MakeDaemon, receivers: list[Receiver], archive: known_archive.Known
) -> None:
    strict, _, _ = daemons(make_daemon, receivers)
    _, final, _ = scu.move(strict, scu.identifier("STUDY", StudyInstanceUID=""), "NOBODY")
    assert final.Status == 0xA801
