"""A peer's control characters never forge a line of ``simdaemon audit`` (issue 15 item 8)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from simdaemon import Daemon
from simdaemon.cli import main
from simdaemon.printable import printable
from tests import objects
from tests.adversarial.malformed import explicit, send, splice

FORGED = "ID\n10:00:00.000000 associate from 'ADMIN': accepted"
ANSI = "EVIL\x1b[2J\x1b[31m"
LINE = re.compile(r"\d\d:\d\d:\d\d\.\d{6} \w+ from '")


def test_audit_text_has_one_line_per_event_and_json_is_exact(
    daemon: Daemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ds = objects.ct()
    data = splice(ds, explicit(0x00100020, "LO", FORGED.encode()), at=0x00100020)
    send(daemon, data, tmp_path, sop_class=str(ds.SOPClassUID), sop_instance=ds.SOPInstanceUID)
    # An event carrying raw control characters, as any future code path might record one.
    daemon.audit.record(
        "fault", calling_ae=ANSI, called_ae="VMSDBD", peer="127.0.0.1:1", outcome="fired",
        detail=f"patient {FORGED}",
    )  # fmt: skip
    persisted = daemon.archive.audit_events()
    assert len(persisted) >= 3  # association, store, fault

    assert main(["audit", "--archive", str(tmp_path / "archive")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(persisted)
    assert all(LINE.match(line) for line in lines), lines
    assert not any("\x1b" in line for line in lines)
    assert f"from '{printable(ANSI)}'" in lines[-1]
    assert f"patient {printable(FORGED)}" in lines[-1]

    assert main(["audit", "--archive", str(tmp_path / "archive"), "--json"]) == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(records) == len(persisted)
    assert records[-1]["calling_ae"] == ANSI
    assert records[-1]["detail"] == f"patient {FORGED}"
