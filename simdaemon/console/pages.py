"""The web console's pages: server-rendered HTML, one small vendored script, nothing fetched.

Configuration and Trusted entities reproduce the real daemon's dialogs (labels, order and
grouping from its "DICOM Database Service - Configuration" and "Trusted Application
Entity" windows); Activity follows the audit trail live; Archive browses patients down to
instance thumbnails and lists failed imports and review tasks; Faults adds and clears
injected faults. The pages change nothing themselves: their script calls the same ``/api/``
a test suite calls.
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from simdaemon.config import CHARSET_TERMS
from simdaemon.console import browse
from simdaemon.console.adapters import adapters, choices
from simdaemon.console.api_audit import OUTCOMES, event_json
from simdaemon.console.control import Control
from simdaemon.console.errors import ApiError
from simdaemon.faults import OPERATIONS

__all__ = ["router"]

PAGES = (("/config", "Configuration"), ("/trusted", "Trusted entities"),
         ("/activity", "Activity"), ("/archive", "Archive"), ("/faults", "Faults"),
         ("/api/docs", "API"))  # fmt: skip
#: Modalities whose instances get a thumbnail on the series page.
PICTURED = frozenset({"CT", "MR", "PT", "RTIMAGE", "CR", "DX", "RTSTRUCT"})
#: Events the Activity page renders before the live stream takes over.
ACTIVITY_SHOWN = 500
#: How the Windows dialog names character sets: "NAME (TERM)".
CHARSET_NAMES = {"ISO_IR 6": "US-ASCII", "ISO_IR 100": "Latin-1", "ISO_IR 101": "Latin-2",
                 "ISO_IR 109": "Latin-3", "ISO_IR 110": "Latin-4", "ISO_IR 144": "Cyrillic",
                 "ISO_IR 127": "Arabic", "ISO_IR 126": "Greek", "ISO_IR 138": "Hebrew",
                 "ISO_IR 148": "Latin-5", "ISO_IR 13": "Japanese", "ISO_IR 166": "Thai",
                 "ISO_IR 192": "Unicode", "GB18030": "Chinese", "GBK": "Chinese"}  # fmt: skip


def _layout(title: str, active: str, body: str, *, data: str = "") -> HTMLResponse:
    nav = "".join(
        f'<a href="{href}"{" class=active" if href == active else ""}>{escape(label)}</a>'
        for href, label in PAGES
    )
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{escape(title)} - simdaemon</title>"
        '<link rel=stylesheet href="/static/console.css"></head>'
        f"<body{data}><header><b>simdaemon</b><nav>{nav}</nav></header>"
        f"<main><h1>{escape(title)}</h1>{body}</main>"
        '<script src="/static/console.js"></script></body></html>'
    )


def _check(key: str, label: str, value: bool) -> str:
    checked = " checked" if value else ""
    return (f'<label class=check><input type=checkbox name="{key}" data-kind=bool{checked}> '
            f"{escape(label)}</label>")  # fmt: skip


def _text(key: str, label: str, value: object, kind: str = "str", extra: str = "") -> str:
    shown = f"{value:.2f}" if kind == "float" and isinstance(value, float) else str(value)
    typ = "number" if kind in ("int", "float") else "text"
    step = ' step="0.01"' if kind == "float" else ""
    return (f'<label>{escape(label)} <input type={typ}{step} name="{key}" data-kind={kind} '
            f'value="{escape(shown)}"{extra}></label>')  # fmt: skip


def _interfaces(key: str, label: str, current: str) -> str:
    options = "".join(
        f'<option value="{escape(a.ip)}"{" selected" if a.ip == current else ""}>'
        f"{escape(a.label())}</option>"
        for a in choices(current, adapters())
    )
    return f'<label>{escape(label)} <select name="{key}" data-kind=str>{options}</select></label>'


def _charsets(name: str, chosen: str) -> str:
    options = "".join(
        f'<option value="{escape(t)}"{" selected" if t == chosen else ""}>'
        f"{escape(CHARSET_NAMES.get(t, t))} ({escape(t)})</option>"
        for t in sorted(CHARSET_TERMS, key=lambda t: (t not in CHARSET_NAMES, t))
    )
    return f'<select name="{name}" data-kind=str>{options}</select>'


def _entity_rows(control: Control) -> str:
    return "".join(
        f'<tr data-ae="{escape(e.ae_title)}"><td>{escape(e.ae_title)}</td><td>{escape(e.ip)}</td>'
        f"<td>{e.port}</td><td>{escape(e.import_charset)}</td><td>{escape(e.export_charset)}"
        f"</td></tr>"
        for e in control.trusted
    )


def _event_row(event: dict[str, Any]) -> str:
    tip = event["advice"]
    status = f"0x{event['status']:04X}" if event["status"] is not None else ""
    return (
        f'<tr class="{escape(event["outcome"])}" data-ae="{escape(event["calling_ae"])}" '
        f'data-outcome="{escape(event["outcome"])}"><td>{escape(event["time"][11:23])}</td>'
        f"<td>{escape(event['operation'])}</td><td>{escape(event['calling_ae'])}</td>"
        f"<td>{escape(event['outcome'])} {status}</td><td>{escape(event['detail'])}"
        + (f"<div class=advice>What to change: {escape(tip)}</div>" if tip else "")
        + "</td></tr>"
    )


def router(control: Control) -> APIRouter:
    """The pages, bound to ``control``."""
    pages = APIRouter(include_in_schema=False)

    @pages.get("/", response_class=HTMLResponse)
    def home() -> HTMLResponse:
        c = control
        port = c.port if c.running else "-"
        body = (
            f"<p class=status>{escape(c.ae_title)} on {escape(c.host)}:{port} - "
            f"{len(c.trusted)} trusted entities, {len(c.faults)} faults, "
            f"{c.archive.count()} instances, {c.audit.recorded} audit events.</p>"
            "<ul>" + "".join(f'<li><a href="{h}">{escape(t)}</a></li>' for h, t in PAGES) + "</ul>"
        )
        return _layout("Console", "/", body)

    @pages.get("/config", response_class=HTMLResponse)
    def config_page() -> HTMLResponse:
        cfg = control.config
        d, m, pc, im, inv = (cfg.daemon, cfg.patient_matching, cfg.patient_creation,
                             cfg.images, cfg.investigation)  # fmt: skip
        rows = "".join(
            f"<tr><td>{escape(e.ae_title)}</td><td>{escape(e.ip)}</td><td>{e.port}</td></tr>"
            for e in cfg.trusted
        )
        body = f"""
<form id=config-form class=dialog>
<fieldset><legend>DICOM Network Settings</legend>
{_text("daemon.ae_title", "AE Title", d.ae_title)}
{_text("daemon.port", "Port Number", d.port, "int")}
{_interfaces("daemon.host", "Network Interface", d.host)}
</fieldset>
<fieldset><legend>Patient Matching</legend><div class=columns><div>
{_check("patient_matching.patient_id", "Patient Id", m.patient_id)}
{_check("patient_matching.patient_id2", "Patient Id2", m.patient_id2)}
{_check("patient_matching.birth_date", "Birth Date", m.birth_date)}
</div><div>
{_check("patient_matching.last_name", "Last Name", m.last_name)}
{_check("patient_matching.first_name", "First Name", m.first_name)}
</div></div></fieldset>
<fieldset><legend>Patient Creation</legend>
{_check("patient_creation.automatic", "Automatic Patient Creation", pc.automatic)}
<div class=pair>Hospital / Department
<input name="patient_creation.hospital" data-kind=str value="{escape(pc.hospital)}"> /
<input name="patient_creation.department" data-kind=str value="{escape(pc.department)}"></div>
</fieldset>
<fieldset><legend>Images</legend>
{
            _check(
                "images.create_review_task",
                "Create treatment image review task for imported images.",
                im.create_review_task,
            )
        }
{
            _check(
                "images.user_origin_from_data_collection_center",
                "Set User Origin of imported CT Images to the value of the Data Collection Center "
                "attribute.",
                im.user_origin_from_data_collection_center,
            )
        }
{_text("images.z_offset_mm", "Z-offset [mm]", im.z_offset_mm, "float")}
</fieldset>
<fieldset><legend>Trusted Application Entities</legend>
<table><tr><th>AETitle</th><th>IP</th><th>Port</th></tr>{rows}</table>
<p><a href="/trusted">Add New, Edit, Remove</a> (applies at once, without a restart)</p>
</fieldset>
<fieldset><legend>Investigation Tools</legend>
{
            _check(
                "investigation.save_all_iods",
                "Save every incoming and outgoing IOD as a DICOM Media file.",
                inv.save_all_iods,
            )
        }
<p>Storage location: <code>{escape(inv.iod_folder.as_posix())}</code></p>
<p>Storage location for IODs that failed to import:
<code>{escape(inv.failed_import_folder.as_posix())}</code></p>
{_check("investigation.sql_trace", "SQL Trace", inv.sql_trace)}
</fieldset>
<footer><span>Service will restart when pressing OK</span>
<button type=submit id=config-ok>OK</button> <button type=reset>Cancel</button></footer>
<p id=config-message class=message></p>
</form>"""
        return _layout("DICOM Database Service - Configuration", "/config", body)

    @pages.get("/trusted", response_class=HTMLResponse)
    def trusted_page() -> HTMLResponse:
        body = f"""
<table id=trusted class=select><thead><tr><th>AETitle</th><th>IP</th><th>Port</th>
<th>Import</th><th>Export</th></tr></thead><tbody>{_entity_rows(control)}</tbody></table>
<p><button id=add-new>Add New</button> <button id=edit>Edit</button>
<button id=remove>Remove</button></p><p id=trusted-message class=message></p>
<dialog id=entity-dialog><form id=entity-form method=dialog>
<h2>Trusted Application Entity</h2>
<fieldset><legend>Application Entity Information</legend>
{_text("ae_title", "AE Title", "")}{_text("ip", "IP", "")}{_text("port", "Port", "", "int")}
</fieldset>
<fieldset><legend>DICOM Specific Character Set Import</legend>
{_charsets("import_charset", "ISO_IR 6")}
{_check("override_import_charset", "Override DICOM Specific Character Set", False)}
</fieldset>
<fieldset><legend>DICOM Specific Character Set Export</legend>
{_charsets("export_charset", "ISO_IR 192")}</fieldset>
<p id=entity-message class=message></p>
<footer><button type=submit id=entity-ok value=ok>OK</button>
<button type=button id=entity-cancel>Cancel</button></footer>
</form></dialog>"""
        return _layout("Trusted Application Entities", "/trusted", body)

    @pages.get("/activity", response_class=HTMLResponse)
    def activity_page() -> HTMLResponse:
        trail = control.audit
        seen = trail.recorded
        events = [event_json(e) for e in trail.events()[-ACTIVITY_SHOWN:]]
        rows = "".join(_event_row(e) for e in reversed(events))
        outcomes = "".join(f"<option>{o}</option>" for o in OUTCOMES)
        body = f"""
<p class=filters>Calling AE <input id=filter-ae placeholder="any">
Outcome <select id=filter-outcome><option value="">any</option>{outcomes}</select>
<span id=live class=live>live</span></p>
<table id=activity><thead><tr><th>Time (UTC)</th><th>Operation</th><th>Calling AE</th>
<th>Outcome</th><th>What happened</th></tr></thead><tbody>{rows}</tbody></table>"""
        return _layout("Activity", "/activity", body, data=f' data-after="{seen}"')

    @pages.get("/archive", response_class=HTMLResponse)
    def archive_page() -> HTMLResponse:
        rows = "".join(
            f'<tr><td><a href="/archive/{quote(p["patient_id"], safe="")}">'
            f"{escape(p['patient_id'])}</a></td><td>{escape(p['name'])}</td>"
            f"<td>{escape(p['birth_date'])}</td><td>{escape(p['hospital'])}</td>"
            f"<td>{p['studies']}</td><td>{p['series']}</td><td>{p['instances']}</td></tr>"
            for p in browse.patients(control.archive)
        )
        failed = "".join(
            f"<tr class=failure><td>{escape(f.get('status', ''))}</td>"
            f"<td>{escape(f.get('calling_ae', ''))}</td>"
            f"<td>{escape(f.get('sop_instance_uid', ''))}</td>"
            f"<td>{escape(f.get('reason', ''))}</td></tr>"
            for f in browse.failed_imports(control.investigator.settings.failed_import_folder)
        )
        tasks = "".join(
            f"<tr><td>{escape(t.created)}</td><td>{escape(t.patient_id)}</td>"
            f"<td>{escape(t.kind)}</td><td>{escape(t.state)}</td>"
            f'<td><a href="/api/instances/{quote(t.sop_instance_uid, safe="")}/file">'
            f"{escape(t.sop_instance_uid)}</a></td></tr>"
            for t in control.archive.review_tasks()
        )
        body = (
            "<table id=patients><thead><tr><th>Patient ID</th><th>Name</th><th>Birth date</th>"
            "<th>Hospital</th><th>Studies</th><th>Series</th><th>Instances</th></tr></thead>"
            f"<tbody>{rows}</tbody></table><h2>Failed imports</h2>"
            "<table id=failed><thead><tr><th>Status</th><th>Calling AE</th>"
            "<th>SOP Instance UID</th><th>Reason</th></tr></thead>"
            f"<tbody>{failed}</tbody></table><h2>Treatment image review tasks</h2>"
            "<p>Created on import when Configuration's Images option is ticked.</p>"
            "<table id=review-tasks><thead><tr><th>Created</th><th>Patient ID</th>"
            "<th>Kind</th><th>State</th><th>SOP Instance UID</th></tr></thead>"
            f"<tbody>{tasks}</tbody></table>"
        )
        return _layout("Archive", "/archive", body)

    @pages.get("/archive/{patient_id}", response_class=HTMLResponse)
    def patient_page(patient_id: str) -> HTMLResponse:
        archive = control.archive
        if not any(p.patient_id == patient_id for p in archive.patients()):
            raise ApiError(404, f"no patient with Patient ID {patient_id!r}", "patient_id")
        parts = []
        pid = quote(patient_id, safe="")
        for study in browse.studies(archive, patient_id):
            series = "".join(
                f'<tr><td><a href="/archive/{pid}/series/{quote(s["series_uid"], safe="")}">'
                f"{escape(s['modality'])}</a></td><td>{escape(s['description'])}</td>"
                f"<td>{s['instances']}</td><td>{escape(s['series_uid'])}</td></tr>"
                for s in browse.series(archive, patient_id, study["study_uid"])
            )
            parts.append(
                f"<h2>Study {escape(study['study_id'])} {escape(study['date'])} "
                f"{escape(study['description'])}</h2><table class=series><thead><tr>"
                "<th>Modality</th><th>Description</th><th>Instances</th><th>Series UID</th>"
                f"</tr></thead><tbody>{series}</tbody></table>"
            )
        return _layout(f"Patient {patient_id}", "/archive", "".join(parts))

    @pages.get("/archive/{patient_id}/series/{series_uid}", response_class=HTMLResponse)
    def series_page(patient_id: str, series_uid: str) -> HTMLResponse:
        found = browse.instances(control.archive, patient_id, series_uid)
        if not found:
            raise ApiError(404, f"no series {series_uid!r} of patient {patient_id!r}", "series_uid")
        cells = []
        for item in found:
            uid = quote(item["sop_instance_uid"], safe="")
            picture = (
                f'<img class=thumbnail alt="instance {escape(item["instance_number"])}" '
                f'src="/api/instances/{uid}/thumbnail.png">'
                if item["modality"] in PICTURED
                else ""
            )
            cells.append(
                f"<figure>{picture}<figcaption>{escape(item['modality'])} "
                f'#{escape(item["instance_number"])} <a href="/api/instances/{uid}/file">'
                "DICOM</a></figcaption></figure>"
            )
        return _layout(f"Series of {patient_id}", "/archive",
                       f'<div class=gallery>{"".join(cells)}</div>')  # fmt: skip

    @pages.get("/faults", response_class=HTMLResponse)
    def faults_page() -> HTMLResponse:
        rows = "".join(
            f"<tr><td>{n}</td><td>{escape(rule.describe())}</td></tr>"
            for n, rule in enumerate(control.faults.rules, start=1)
        )
        operations = "".join(f"<option>{o}</option>" for o in OPERATIONS)
        body = f"""
<table id=faults><thead><tr><th>#</th><th>Rule</th></tr></thead><tbody>{rows}</tbody></table>
<p><button id=clear-faults>Clear all</button></p>
<h2>Add a fault</h2>
<form id=fault-form class=dialog>
<label>Operation <select name=operation data-kind=str>{operations}</select></label>
{_text("status", "Answer status (hex, e.g. A700)", "", "hex")}
{_text("times", "Only the next N requests", "", "int")}
{_text("drop_fraction", "Drop this fraction of a move's objects (0-1)", "", "float")}
{_text("probability", "Probability (0-1)", "", "float")}
{_text("delay_ms", "Delay (ms)", "", "float")}
{_check("refuse", "Refuse the association (associate only)", False)}
{_text("calling_ae", "Only from calling AE", "")}
{_text("comment", "Error Comment", "")}
<footer><button type=submit id=fault-add>Add</button></footer>
<p id=fault-message class=message></p></form>"""
        return _layout("Faults", "/faults", body)

    @pages.get("/api/docs", response_class=HTMLResponse)
    def docs_page() -> HTMLResponse:
        body = (
            '<p>The OpenAPI document: <a href="/api/openapi.json">/api/openapi.json</a>. '
            "Every operation below can be tried here; a C# or any other client calls the "
            "same paths.</p><div id=operations></div>"
        )
        return _layout("API", "/api/docs", body, data=" data-docs")

    return pages
