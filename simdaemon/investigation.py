"""Investigation tools (SPEC section 9): every IOD as a file, and failed imports with reasons.

File names come from the time, the direction, the peer's AE title and the SOP Instance UID,
each reduced to characters safe in a file name, so nothing a peer sends can choose a path.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from simdaemon.config import Investigation
from simdaemon.printable import printable
from simdaemon.validation import is_valid_uid

__all__ = ["Investigator", "resolve", "safe_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(text: str, fallback: str) -> str:
    """Reduce ``text`` to a file-name-safe word (never empty, never ``.``/``..``)."""
    cleaned = _UNSAFE.sub("_", text.strip())[:64].strip("._")
    return cleaned or fallback


def resolve(settings: Investigation, archive: Path) -> Investigation:
    """The investigation folders, relative ones placed inside ``archive``.

    A configuration file resolves its relative folders against its own folder, so a folder
    still relative here was given by no file (``Config()``, no ``--config``): it belongs
    with the archive - failed imports carry patient names and IDs - and never in whatever
    the process's working directory happens to be.
    """
    return dataclasses.replace(
        settings,
        iod_folder=archive / settings.iod_folder,
        failed_import_folder=archive / settings.failed_import_folder,
    )


class Investigator:
    """Writes the investigation files the configuration asks for.

    ``archive``, when given, is where relative folders of ``settings`` go (:func:`resolve`).
    """

    def __init__(self, settings: Investigation, archive: Path | None = None) -> None:
        self.settings = resolve(settings, archive) if archive is not None else settings
        self._lock = threading.Lock()
        self._sequence = 0

    def _stem(self, direction: str, peer_ae: str, sop_instance_uid: str) -> str:
        with self._lock:
            self._sequence += 1
            sequence = self._sequence
        uid = sop_instance_uid if is_valid_uid(sop_instance_uid) else "invalid-uid"
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%f")
        return f"{stamp}-{sequence:04d}_{direction}_{safe_name(peer_ae, 'unknown-ae')}_{uid}"

    def save_iod(self, direction: str, peer_ae: str, sop_instance_uid: str, data: bytes) -> None:
        """Keep an incoming (``in``) or outgoing (``out``) object when ``save_all_iods`` is on."""
        if not self.settings.save_all_iods:
            return
        folder = self.settings.iod_folder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self._stem(direction, peer_ae, sop_instance_uid)}.dcm").write_bytes(data)

    def park(
        self,
        data: bytes,
        *,
        peer_ae: str,
        sop_instance_uid: str,
        status: int,
        answered: int,
        rule: str,
        detail: str,
        compared: Sequence[tuple[str, str, str]] = (),
    ) -> Path:
        """Keep a failed object as received, with ``<name>.reason.txt`` saying why."""
        folder = self.settings.failed_import_folder
        folder.mkdir(parents=True, exist_ok=True)
        stem = self._stem("in", peer_ae, sop_instance_uid)
        path = folder / f"{stem}.dcm"
        path.write_bytes(data)
        # What the peer sent is escaped: one field, one line, as a reader expects.
        lines = [
            f"status: 0x{status:04X}",
            f"answered: 0x{answered:04X}",
            f"rule: {rule}",
            f"calling AE: {printable(peer_ae)}",
            f"SOP Instance UID: {printable(sop_instance_uid)}",
            f"reason: {printable(detail)}",
        ]
        if compared:
            lines.append("values compared (criterion: object | stored patient):")
            lines += [
                f"  {name}: '{printable(mine)}' | '{printable(theirs)}'"
                for name, mine, theirs in compared
            ]
        (folder / f"{stem}.reason.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return path
