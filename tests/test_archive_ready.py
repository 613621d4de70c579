"""Files made ready ahead of need in files/.incoming: invisible to checks, gone at close."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

import simdaemon.archive
from simdaemon.archive import PREFILL_LIMIT, PREFILL_MIN, READY, Archive, _Ready


def ready_files(archive: Archive) -> list[Path]:
    return sorted(archive.incoming.glob(f"*{READY}"))


def wait_for_ready(archive: Archive) -> bool:
    """Whether the helper made a file ready within 10 s (it runs on its own thread).

    Two on disk: the helper creates a file, then offers it, so the first may not be offered
    yet; the helper only starts the second once the first is offered.
    """
    deadline = time.monotonic() + 10
    while len(ready_files(archive)) < 2 and time.monotonic() < deadline:
        threading.Event().wait(0.005)  # polling a state with a deadline, not a fixed sleep
    return len(ready_files(archive)) >= 2


def test_staging_uses_a_ready_file_and_the_check_does_not_count_them(tmp_path: Path) -> None:
    with Archive(tmp_path / "a") as archive:
        first = archive.stage(b"one")  # no file ready yet: created, and the helper starts
        assert first.suffix == ".part"
        first.unlink()
        assert wait_for_ready(archive)
        staged = [archive.stage(b"abc", b"def") for _ in range(20)]
        assert [p.read_bytes() for p in staged] == [b"abcdef"] * 20
        assert staged[0].suffix == READY  # written into a file made ready
        for path in staged:
            path.unlink()
        found = archive.check()
        assert found.partial_files == ()
        assert found.ok
    assert ready_files(archive) == []  # removed at close


def wait_for_prefilled(archive: Archive, size: int) -> bool:
    """Whether two files holding ``size`` zero bytes were made ready within 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if sum(p.stat().st_size == size for p in ready_files(archive)) >= 2:
            return True
        threading.Event().wait(0.005)  # polling a state with a deadline, not a fixed sleep
    return False


def test_files_are_made_ready_holding_as_many_zeros_as_the_last_object(tmp_path: Path) -> None:
    # The pages an object is written into exist before it comes (a VM's dearest step).
    size = PREFILL_MIN + 1000
    with Archive(tmp_path / "a") as archive:
        archive.stage(b"x" * size).unlink()
        assert wait_for_prefilled(archive, size)
        prefilled = [p for p in ready_files(archive) if p.stat().st_size == size]
        assert prefilled[0].read_bytes() == bytes(size)


def test_after_a_small_object_the_files_made_ready_stay_empty(tmp_path: Path) -> None:
    with Archive(tmp_path / "a") as archive:
        archive.stage(b"x" * (PREFILL_MIN - 1)).unlink()
        assert wait_for_ready(archive)
        assert {p.stat().st_size for p in ready_files(archive)} == {0}


def test_an_object_shorter_or_longer_than_the_zeros_is_staged_exactly(tmp_path: Path) -> None:
    size = PREFILL_MIN + 1000
    with Archive(tmp_path / "a") as archive:
        archive.stage(b"x" * size).unlink()
        assert wait_for_prefilled(archive, size)
        shorter = archive.stage(b"abc", b"de")  # into zeros: cut to its length
        assert shorter.suffix == READY
        assert shorter.read_bytes() == b"abcde"
        archive.stage(b"y" * size).unlink()
        assert wait_for_prefilled(archive, size)
        longer = archive.stage(b"z" * (size + 3000))
        assert longer.suffix == READY
        assert longer.read_bytes() == b"z" * (size + 3000)


def test_the_zeros_stop_at_the_limit_for_a_large_object(tmp_path: Path) -> None:
    with Archive(tmp_path / "a") as archive:
        archive.stage(bytes(PREFILL_LIMIT + 4096)).unlink()
        assert wait_for_prefilled(archive, PREFILL_LIMIT)


def test_a_file_the_disk_had_no_room_to_fill_is_not_left_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ready = _Ready(tmp_path)
    ready.prefill = 4096
    attempted = threading.Event()

    def disk_full(handle: int, count: int) -> None:
        ready._closed = True  # one attempt: the helper's loop ends after it
        attempted.set()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(simdaemon.archive, "_write_zeros", disk_full)
    ready.take()  # starts the helper, which creates a file and fails to fill it
    assert attempted.wait(10)
    ready.close()  # joins the helper
    assert list(tmp_path.iterdir()) == []


def test_a_ready_file_removed_under_the_archive_is_replaced_by_a_new_one(
    tmp_path: Path,
) -> None:
    with Archive(tmp_path / "a") as archive:
        archive.stage(b"x").unlink()
        for path in archive.incoming.iterdir():  # e.g. a repair by hand while imports run
            path.unlink()
        staged = archive.stage(b"still stored")
        assert staged.read_bytes() == b"still stored"


def test_a_stopped_processs_ready_files_are_removed_at_the_next_start(tmp_path: Path) -> None:
    Archive(tmp_path / "a").close()
    left = tmp_path / "a" / "files" / ".incoming" / f"0123{READY}"
    left.write_bytes(b"")  # a process killed while files were ready
    with Archive(tmp_path / "a") as archive:
        archive.repair()  # as Daemon.start does
        assert ready_files(archive) == []


@pytest.mark.parametrize("at_most", [1, 7, 4096])
def test_staging_writes_every_byte_when_the_file_takes_them_in_pieces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, at_most: int
) -> None:
    """``writev`` may take fewer bytes than it was given (a signal, a full disk on the way):
    the rest is written, from where it stopped, into a ready file and a new one alike."""
    real = simdaemon.archive.os.writev
    calls = []

    def partial(handle: int, buffers: list[memoryview]) -> int:
        calls.append(handle)
        assert len(calls) < 100_000, "the staging loop does not advance"
        first = memoryview(buffers[0])[:at_most]  # at most a piece of the first buffer
        return real(handle, [first])

    monkeypatch.setattr(simdaemon.archive.os, "writev", partial)
    head, body = b"DICM" * 33, bytes(range(256)) * 40
    with Archive(tmp_path / "a") as archive:
        first = archive.stage(head, body)  # nothing ready yet: a file of its own
        assert first.read_bytes() == head + body
        assert wait_for_ready(archive)
        second = archive.stage(head, b"", body)  # into a ready file
        assert second.read_bytes() == head + body


def test_staging_refuses_a_file_that_takes_no_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write that takes nothing and reports no error must not loop for ever."""
    monkeypatch.setattr(simdaemon.archive.os, "writev", lambda handle, buffers: 0)
    with Archive(tmp_path / "a") as archive, pytest.raises(OSError, match="none of the bytes"):
        archive.stage(b"abc")
