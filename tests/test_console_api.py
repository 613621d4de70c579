"""The console's JSON API over real HTTP: every endpoint's success and its 4xx naming the field."""

from __future__ import annotations

import html
import http.client
import io
import json
import re
import struct
import subprocess
import sys
import tomllib
import zlib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from pydicom import dcmread

from simdaemon.pytest_plugin import TestDaemon
from tests import objects, scu
from tests.http import Answer, call

pytestmark = pytest.mark.simdaemon(console=True)


def api(
    daemon: TestDaemon, method: str, path: str, body: object = None, *, raw: bytes | None = None
) -> Answer:
    assert daemon.console is not None
    headers = {"Content-Type": "application/json"} if raw is not None else None
    return call(daemon.console.url, method, path, body, headers, raw=raw)


def ok(daemon: TestDaemon, method: str, path: str, body: object = None) -> Any:
    answer = api(daemon, method, path, body)
    assert answer.status < 300, answer.body
    return answer.json() if answer.body else None


def refused(daemon: TestDaemon, method: str, path: str, body: object, field: str) -> str:
    """The detail of a 4xx that names ``field``."""
    answer = api(daemon, method, path, body)
    assert 400 <= answer.status < 500, answer.body
    assert answer.field == field, answer.body
    detail: str = answer.json()["detail"]
    assert "Traceback" not in detail
    return detail


def echo(daemon: TestDaemon, calling: str) -> bool:
    assoc = scu.associate(daemon, calling)
    try:
        return assoc.is_established and int(assoc.send_c_echo().Status) == 0
    finally:
        if assoc.is_established:
            assoc.release()


def png_pixels(data: bytes, samples: int = 1) -> tuple[int, int, bytes]:
    """Decode an 8-bit grayscale (or RGB: ``samples`` 3) PNG as png.py writes it."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, idat, width, height = 8, b"", 0, 0
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind = data[offset + 4 : offset + 8]
        chunk = data[offset + 8 : offset + 8 + length]
        assert zlib.crc32(kind + chunk) == struct.unpack(">I", data[offset + 8 + length :][:4])[0]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
            assert (depth, color) == (8, 0 if samples == 1 else 2)
        elif kind == b"IDAT":
            idat += chunk
        offset += 12 + length
    raw = zlib.decompress(idat)
    stride = width * samples + 1
    rows = [raw[y * stride : (y + 1) * stride] for y in range(height)]
    assert all(row[0] == 0 for row in rows)  # filter type None
    return width, height, b"".join(row[1:] for row in rows)


def test_status_names_the_daemon_and_its_port(simdaemon: TestDaemon) -> None:
    status = ok(simdaemon, "GET", "/api/status")
    assert (status["ae_title"], status["port"], status["running"]) == (
        "VMSDBD",
        simdaemon.port,
        True,
    )
    assert status["trusted"] == 1
    assert status["instances"] == 0


def test_config_reads_as_the_toml_tables(simdaemon: TestDaemon) -> None:
    config = ok(simdaemon, "GET", "/api/config")
    assert config["daemon"]["ae_title"] == "VMSDBD"
    assert config["patient_creation"]["automatic"] is True
    assert config["trusted"] == [
        {
            "ae_title": "SIMTEST",
            "ip": "127.0.0.1",
            "port": simdaemon.test_entity.port,
            "import_charset": "ISO_IR 6",
            "override_import_charset": False,
            "export_charset": "ISO_IR 192",
        }
    ]


def test_put_config_validates_with_the_toml_loaders_messages(simdaemon: TestDaemon) -> None:
    config = ok(simdaemon, "GET", "/api/config")
    config["daemon"]["port"] = 70000
    detail = refused(simdaemon, "PUT", "/api/config", config, "daemon.port")
    assert detail == "daemon.port = 70000 is not allowed: expected an integer from 0 to 65535"
    config["daemon"]["port"] = 0
    config["patient_matching"]["birth_date"] = "yes"
    refused(simdaemon, "PUT", "/api/config", config, "patient_matching.birth_date")
    config["patient_matching"]["birth_date"] = False
    config["images"]["colour"] = True
    assert "unknown key" in refused(simdaemon, "PUT", "/api/config", config, "images.colour")
    del config["images"]["colour"]
    config["trusted"][0]["ip"] = "nowhere"
    refused(simdaemon, "PUT", "/api/config", config, "trusted[1].ip")
    refused(simdaemon, "PUT", "/api/config", [1, 2], "body")


def test_put_config_never_takes_a_folder(simdaemon: TestDaemon, tmp_path: Path) -> None:
    config = ok(simdaemon, "GET", "/api/config")
    config["daemon"]["archive"] = str(tmp_path / "elsewhere")
    assert "does not change folders" in refused(
        simdaemon, "PUT", "/api/config", config, "daemon.archive"
    )
    config = ok(simdaemon, "GET", "/api/config")
    config["investigation"]["failed_import_folder"] = "/etc"
    refused(simdaemon, "PUT", "/api/config", config, "investigation.failed_import_folder")
    assert not (tmp_path / "elsewhere").exists()


def test_put_config_restarts_the_dicom_side_with_it(simdaemon: TestDaemon) -> None:
    config = ok(simdaemon, "GET", "/api/config")
    config["daemon"]["ae_title"] = "RESTARTED"
    config["patient_creation"]["automatic"] = False
    status = ok(simdaemon, "PUT", "/api/config", config)
    assert status["ae_title"] == "RESTARTED"
    assert status["port"] == simdaemon.port
    assert simdaemon.config.patient_creation.automatic is False
    assert echo(simdaemon, "SIMTEST")  # the new AE title answers (scu calls daemon.ae_title)
    assert ok(simdaemon, "GET", "/api/config")["daemon"]["ae_title"] == "RESTARTED"


def test_config_written_through_the_api_equals_config_check(
    simdaemon: TestDaemon, tmp_path: Path
) -> None:
    """The same TOML, once through `simdaemon config --check` and once through PUT."""
    current = simdaemon.config
    # port = 0: without it the daemon restarts on the default 51402, which another test or
    # process may hold (a fixed port is what made this test fail once under xdist).
    text = f"""
[daemon]
ae_title = "ARIA15"
port = 0
archive = {json.dumps(current.daemon.archive.as_posix())}
max_associations = 4

[patient_matching]
birth_date = true
first_name = false

[patient_creation]
automatic = false
hospital = "UAB"
department = "Radiation Oncology"

[images]
z_offset_mm = 1.25

[investigation]
iod_folder = {json.dumps(current.investigation.iod_folder.as_posix())}
failed_import_folder = {json.dumps(current.investigation.failed_import_folder.as_posix())}

[[trusted]]
ae_title = "MYCLIENT"
ip = "10.130.10.0/24"
port = 9999
export_charset = "ISO_IR 100"

[[faults]]
operation = "store"
status = 42752
times = 3
"""
    path = tmp_path / "daemon.toml"
    path.write_text(text, encoding="utf-8")
    checked = subprocess.run(
        [sys.executable, "-m", "simdaemon", "config", "--check", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    ok(simdaemon, "PUT", "/api/config", tomllib.loads(text))
    written = api(simdaemon, "GET", "/api/config.toml")
    assert written.status == 200
    assert written.body.decode() == checked.stdout


def test_trusted_entities_change_at_run_time(simdaemon: TestDaemon) -> None:
    assert not echo(simdaemon, "NEWCOMER")
    added = {"ae_title": "NEWCOMER", "ip": "127.0.0.1", "port": 11112}
    entity = ok(simdaemon, "POST", "/api/trusted", added)
    assert entity["export_charset"] == "ISO_IR 192"  # the default, as in the TOML
    assert "NEWCOMER" in [e["ae_title"] for e in ok(simdaemon, "GET", "/api/trusted")]
    assert echo(simdaemon, "NEWCOMER")
    changed = ok(simdaemon, "PUT", "/api/trusted/NEWCOMER", {**added, "ae_title": "RENAMED"})
    assert changed["ae_title"] == "RENAMED"
    assert not echo(simdaemon, "NEWCOMER")
    assert echo(simdaemon, "RENAMED")
    assert api(simdaemon, "DELETE", "/api/trusted/RENAMED").status == 204
    assert not echo(simdaemon, "RENAMED")


def test_trusted_entity_errors_name_the_field(simdaemon: TestDaemon) -> None:
    good = {"ae_title": "GOOD", "ip": "127.0.0.1", "port": 104}
    refused(simdaemon, "POST", "/api/trusted", {**good, "ip": "10.0.0.300"}, "ip")
    refused(simdaemon, "POST", "/api/trusted", {**good, "port": 0}, "port")
    refused(simdaemon, "POST", "/api/trusted", {**good, "ae_title": "X" * 17}, "ae_title")
    refused(simdaemon, "POST", "/api/trusted", {**good, "export_charset": "KLINGON"},
            "export_charset")  # fmt: skip
    missing = refused(simdaemon, "POST", "/api/trusted", {"ip": "127.0.0.1", "port": 1}, "ae_title")
    assert "missing" in missing
    refused(simdaemon, "POST", "/api/trusted", {**good, "colour": 1}, "colour")
    refused(simdaemon, "DELETE", "/api/trusted/NOBODY", None, "ae_title")
    refused(simdaemon, "PUT", "/api/trusted/NOBODY", good, "ae_title")
    broken = api(simdaemon, "POST", "/api/trusted", raw=b"{not json")
    assert broken.status == 422
    assert "Traceback" not in broken.body.decode()


def test_faults_are_added_met_and_cleared(simdaemon: TestDaemon) -> None:
    rule = ok(simdaemon, "POST", "/api/faults", {"operation": "store", "status": 0xA700,
                                                  "times": 1})  # fmt: skip
    assert rule["number"] == 1
    assert "0xA700" in rule["described"]
    assert [f["status"] for f in ok(simdaemon, "GET", "/api/faults")] == [0xA700]
    first, second = objects.ct(), objects.ct()
    answers = scu.store(simdaemon, [first, second], "SIMTEST")
    assert [scu.status_of(a)[0] for a in answers] == [0xA700, 0x0000]
    assert api(simdaemon, "DELETE", "/api/faults").status == 204
    assert ok(simdaemon, "GET", "/api/faults") == []


def test_fault_errors_name_the_field(simdaemon: TestDaemon) -> None:
    refused(simdaemon, "POST", "/api/faults", {"operation": "dance", "status": 1}, "operation")
    refused(simdaemon, "POST", "/api/faults", {"status": 0xA700}, "operation")
    refused(simdaemon, "POST", "/api/faults", {"operation": "echo", "status": 70000}, "status")
    refused(simdaemon, "POST", "/api/faults", {"operation": "echo", "refuse": True}, "refuse")
    refused(simdaemon, "POST", "/api/faults", {"operation": "move", "drop_fraction": 2},
            "drop_fraction")  # fmt: skip
    refused(simdaemon, "POST", "/api/faults", {"operation": "echo", "when": 1}, "when")


def test_audit_filters(simdaemon: TestDaemon) -> None:
    assert echo(simdaemon, "SIMTEST")
    assert not echo(simdaemon, "STRANGER")
    rejected = ok(simdaemon, "GET", "/api/audit?operation=associate&outcome=rejected")
    assert [e["calling_ae"] for e in rejected] == ["STRANGER"]
    assert "STRANGER" in rejected[0]["text"]
    assert rejected[0]["rule"]
    echoes = ok(simdaemon, "GET", "/api/audit?operation=echo&calling_ae=SIMTEST")
    assert [e["outcome"] for e in echoes] == ["success"]
    since = rejected[0]["time"]
    later = ok(simdaemon, "GET", f"/api/audit?since={since.replace('+', '%2B')}")
    assert later
    assert all(e["time"] >= since for e in later)
    assert ok(simdaemon, "GET", "/api/audit?since=2999-01-01T00:00:00") == []
    assert len(ok(simdaemon, "GET", "/api/audit?limit=1")) == 1
    refused(simdaemon, "GET", "/api/audit?since=yesterday", None, "since")
    refused(simdaemon, "GET", "/api/audit?limit=0", None, "limit")
    refused(simdaemon, "GET", "/api/audit?status=x", None, "status")


def test_findings_are_listed_with_their_fix_and_highlighted_in_activity(
    simdaemon: TestDaemon,
) -> None:
    # A series query without its study's UID: other servers refuse it (a portability finding).
    query = scu.identifier("SERIES", Modality="CT", SeriesInstanceUID="")
    _, final = scu.find(simdaemon, query, calling="SIMTEST")
    assert int(final.Status) == 0x0000, "recorded, not refused, by default"
    found = ok(simdaemon, "GET", "/api/findings")
    assert [(f["rule"], f["outcome"]) for f in found] == [
        ("query-missing-parent-unique-key", "portability")
    ]
    finding = found[0]
    assert finding["calling_ae"] == "SIMTEST"
    assert finding["detail"].endswith("; fix: " + finding["advice"])
    assert "StudyInstanceUID" in finding["advice"]
    assert ok(simdaemon, "GET", "/api/audit?operation=finding") == found
    assert ok(simdaemon, "GET", "/api/findings?severity=portability") == found
    assert ok(simdaemon, "GET", "/api/findings?rule=query-missing-parent-unique-key") == found
    assert ok(simdaemon, "GET", "/api/findings?severity=nonconformant") == []
    assert ok(simdaemon, "GET", "/api/findings?rule=overlapping-dimse") == []
    assert ok(simdaemon, "GET", "/api/findings?calling_ae=OTHER") == []
    assert "nonconformant" in refused(
        simdaemon, "GET", "/api/findings?severity=serious", None, "severity"
    )
    page = api(simdaemon, "GET", "/activity").body.decode()
    row = re.search(r'<tr class="portability"[^>]*>(.*?)</tr>', page, re.S)
    assert row is not None, "the finding is not highlighted by its severity"
    assert f"What to change: {html.escape(finding['advice'])}" in row.group(1)
    assert "<option>danger</option>" in page, "the outcome filter offers the severities"


def test_audit_stream_sends_new_events_as_they_happen(simdaemon: TestDaemon) -> None:
    assert simdaemon.console is not None
    parts = urlsplit(simdaemon.console.url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", "/api/audit/stream?calling_ae=SIMTEST")
        response = connection.getresponse()
        assert response.status == 200
        assert response.getheader("content-type", "").startswith("text/event-stream")
        assert response.readline().startswith(b": ")  # the stream is open
        response.readline()
        assert not echo(simdaemon, "STRANGER")  # filtered out of this stream
        assert echo(simdaemon, "SIMTEST")
        lines = [response.readline() for _ in range(3)]
        assert lines[0] == b"event: audit\n"
        event = json.loads(lines[1].removeprefix(b"data: "))
        assert (event["operation"], event["calling_ae"]) == ("associate", "SIMTEST")
    finally:
        connection.close()


def test_seed_then_browse_the_archive_down_to_a_file_and_a_thumbnail(
    simdaemon: TestDaemon,
) -> None:
    seeded = ok(simdaemon, "POST", "/api/seed", {"patients": 1, "seed": 7, "slices": 3,
                                                  "matrix": 64})  # fmt: skip
    (patient_id,) = seeded["patients"]
    patients = ok(simdaemon, "GET", "/api/patients")
    assert [p["patient_id"] for p in patients] == [patient_id]
    (study,) = ok(simdaemon, "GET", f"/api/patients/{patient_id}/studies")
    assert "CT" in study["modalities"]
    assert study["instances"] == patients[0]["instances"]
    series = ok(
        simdaemon, "GET", f"/api/patients/{patient_id}/series?study_uid={study['study_uid']}"
    )
    ct = next(s for s in series if s["modality"] == "CT")
    query = f"series_uid={ct['series_uid']}"
    instances = ok(simdaemon, "GET", f"/api/patients/{patient_id}/instances?{query}")
    assert len(instances) == 3 == ct["instances"]
    uid = instances[0]["sop_instance_uid"]
    download = api(simdaemon, "GET", f"/api/instances/{uid}/file")
    assert download.status == 200
    assert download.headers["content-type"] == "application/dicom"
    assert dcmread(io.BytesIO(download.body)).SOPInstanceUID == uid
    picture = api(simdaemon, "GET", f"/api/instances/{uid}/thumbnail.png")
    assert picture.headers["content-type"] == "image/png"
    width, height, pixels = png_pixels(picture.body)
    assert (width, height) == (64, 64)
    # An image, not a blank: the phantom's body is brighter than the air around it.
    assert 0.05 < sum(1 for p in pixels if p > 0) / len(pixels) < 0.95
    structures = next(s for s in series if s["modality"] == "RTSTRUCT")
    (structure_set,) = ok(
        simdaemon,
        "GET",
        f"/api/patients/{patient_id}/instances?series_uid={structures['series_uid']}",
    )
    drawn = api(
        simdaemon, "GET", f"/api/instances/{structure_set['sop_instance_uid']}/thumbnail.png"
    )
    assert drawn.status == 200
    width, height, rgb = png_pixels(drawn.body, samples=3)
    colours = {rgb[i : i + 3] for i in range(0, len(rgb), 3)}
    assert any(r != g or g != b for r, g, b in colours), "contours in colour on the gray CT"
    plan = next(s for s in series if s["modality"] == "RTPLAN")
    (plan_instance,) = ok(
        simdaemon, "GET", f"/api/patients/{patient_id}/instances?series_uid={plan['series_uid']}"
    )
    none = api(
        simdaemon, "GET", f"/api/instances/{plan_instance['sop_instance_uid']}/thumbnail.png"
    )
    assert none.status == 422
    assert none.field == "uid"
    imports = ok(simdaemon, "GET", "/api/audit?operation=import&outcome=success")
    assert len(imports) == patients[0]["instances"]


def test_archive_errors_name_the_field(simdaemon: TestDaemon) -> None:
    refused(simdaemon, "GET", "/api/patients/NOBODY/studies", None, "patient_id")
    refused(simdaemon, "GET", "/api/patients/NOBODY/instances", None, "patient_id")
    refused(simdaemon, "GET", "/api/instances/1.2.3/file", None, "uid")
    assert api(simdaemon, "GET", "/api/instances/..%2F..%2Fetc%2Fpasswd/file").status == 404
    refused(simdaemon, "POST", "/api/seed", {"patients": 0}, "patients")
    refused(simdaemon, "POST", "/api/seed", {"matrix": 4096}, "matrix")


def test_failed_imports_are_listed_with_their_reason(simdaemon: TestDaemon) -> None:
    config = ok(simdaemon, "GET", "/api/config")
    config["patient_creation"]["automatic"] = False
    ok(simdaemon, "PUT", "/api/config", config)
    stranger = objects.ct(PatientID="NEWPAT")
    (answer,) = scu.store(simdaemon, [stranger], "SIMTEST")
    assert scu.status_of(answer)[0] == 0xC001
    (failed,) = ok(simdaemon, "GET", "/api/failed")
    assert failed["sop_instance_uid"] == stranger.SOPInstanceUID
    assert failed["status"] == "0xC001"
    assert "NEWPAT" in failed["reason"]
    assert "/" not in failed["name"]


def test_reset_empties_archive_audit_and_runtime_changes(simdaemon: TestDaemon) -> None:
    ok(simdaemon, "POST", "/api/seed", {"slices": 1, "matrix": 16})
    ok(simdaemon, "POST", "/api/trusted", {"ae_title": "EXTRA", "ip": "127.0.0.1", "port": 1})
    ok(simdaemon, "POST", "/api/faults", {"operation": "echo", "status": 0xC000})
    status = ok(simdaemon, "POST", "/api/reset")
    assert (status["instances"], status["trusted"], status["faults"]) == (0, 1, 0)
    assert ok(simdaemon, "GET", "/api/patients") == []
    assert ok(simdaemon, "GET", "/api/audit") == []


@pytest.mark.simdaemon(console=True, images={"create_review_task": True})
def test_review_tasks_are_listed_in_the_api_and_on_the_archive_page(
    simdaemon: TestDaemon,
) -> None:
    assert ok(simdaemon, "GET", "/api/review-tasks") == []
    portal = objects.rt_image()
    ct = objects.same_patient(portal, objects.ct())
    ct.SeriesInstanceUID = objects.uid()
    scu.store(simdaemon, [portal, ct], "SIMTEST")
    (task,) = ok(simdaemon, "GET", "/api/review-tasks")
    assert (task["sop_instance_uid"], task["patient_id"], task["kind"], task["state"]) == (
        portal.SOPInstanceUID, portal.PatientID, "RT Image review", "open"
    )  # fmt: skip
    page = api(simdaemon, "GET", "/archive").body.decode()
    section = page.split("<table id=review-tasks>", 1)[1].split("</table>", 1)[0]
    assert section.count("<tr>") == 2, "the header and the one task"
    assert portal.SOPInstanceUID in section
    assert "RT Image review" in section


def test_review_tasks_and_openapi(simdaemon: TestDaemon) -> None:
    assert ok(simdaemon, "GET", "/api/review-tasks") == []
    document = ok(simdaemon, "GET", "/api/openapi.json")
    for path in ("/api/status", "/api/config", "/api/trusted", "/api/trusted/{ae_title}",
                 "/api/faults", "/api/audit", "/api/audit/stream", "/api/patients",
                 "/api/patients/{patient_id}/studies", "/api/failed", "/api/reset",
                 "/api/seed"):  # fmt: skip
        assert path in document["paths"], path
    docs = api(simdaemon, "GET", "/api/docs")
    assert docs.status == 200
    assert b"/api/openapi.json" in docs.body
    # Nothing of the interactive docs comes from another host.
    assert b"http" not in docs.body.replace(b"http-equiv", b"")
    assert api(simdaemon, "GET", "/docs").status == 404
