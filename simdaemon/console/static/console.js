// simdaemon console: the pages call the same /api/ a test suite calls. No build step,
// no library, nothing fetched from elsewhere. Same-origin fetches carry the console's
// cookie (a token, when one is set) and an Origin header that the console checks.
"use strict";

async function api(method, url, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  if (!response.ok) {
    let error = { detail: response.statusText, field: null };
    try { error = await response.json(); } catch (e) { /* not JSON */ }
    throw error;
  }
  return response.status === 204 ? null : response.json();
}

function fieldValue(input) {
  const kind = input.dataset.kind;
  if (kind === "bool") return input.checked;
  const text = input.value.trim();
  if (text === "") return undefined;
  if (kind === "int") return Number.isInteger(Number(text)) ? Number(text) : text;
  if (kind === "float") return isNaN(Number(text)) ? text : Number(text);
  if (kind === "hex") return isNaN(parseInt(text, 16)) ? text : parseInt(text, 16);
  return text;
}

function showError(form, message, error) {
  form.querySelectorAll(".invalid").forEach((e) => e.classList.remove("invalid"));
  message.className = "message";
  message.textContent = error.detail;
  if (error.field) {
    const input = form.querySelector(`[name="${error.field}"]`);
    if (input) input.classList.add("invalid");
  }
}

function showOk(message, text) {
  message.className = "message ok";
  message.textContent = text;
}

// Configuration: the whole configuration in force, changed by the dialog's fields.
const configForm = document.getElementById("config-form");
if (configForm) {
  configForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const message = document.getElementById("config-message");
    const config = await api("GET", "/api/config");
    configForm.querySelectorAll("[name]").forEach((input) => {
      const [table, key] = input.name.split(".");
      const value = fieldValue(input);
      if (value === undefined) delete config[table][key]; else config[table][key] = value;
    });
    try {
      const status = await api("PUT", "/api/config", config);
      showOk(message, `applied; the service restarted on port ${status.port}`);
    } catch (error) { showError(configForm, message, error); }
  });
}

// Trusted entities: the list, and the add/edit dialog.
const trustedTable = document.getElementById("trusted");
if (trustedTable) {
  const dialog = document.getElementById("entity-dialog");
  const form = document.getElementById("entity-form");
  const message = document.getElementById("entity-message");
  let editing = null;
  const selected = () => trustedTable.querySelector("tr.selected");
  trustedTable.addEventListener("click", (event) => {
    const row = event.target.closest("tbody tr");
    if (!row) return;
    trustedTable.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
    row.classList.add("selected");
  });
  async function open(ae) {
    editing = ae;
    form.reset();
    message.textContent = "";
    if (ae !== null) {
      const entity = (await api("GET", "/api/trusted")).find((e) => e.ae_title === ae);
      for (const [key, value] of Object.entries(entity)) {
        const input = form.querySelector(`[name="${key}"]`);
        if (!input) continue;
        if (input.dataset.kind === "bool") input.checked = value; else input.value = value;
      }
    }
    dialog.showModal();
  }
  document.getElementById("add-new").addEventListener("click", () => open(null));
  document.getElementById("edit").addEventListener("click", () => {
    const row = selected();
    if (row) open(row.dataset.ae);
  });
  document.getElementById("remove").addEventListener("click", async () => {
    const row = selected();
    if (!row) return;
    await api("DELETE", `/api/trusted/${encodeURIComponent(row.dataset.ae)}`);
    location.reload();
  });
  document.getElementById("entity-cancel").addEventListener("click", () => dialog.close());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const entity = {};
    form.querySelectorAll("[name]").forEach((input) => {
      const value = fieldValue(input);
      if (value !== undefined) entity[input.name] = value;
    });
    try {
      if (editing === null) await api("POST", "/api/trusted", entity);
      else await api("PUT", `/api/trusted/${encodeURIComponent(editing)}`, entity);
      dialog.close();
      location.reload();
    } catch (error) { showError(form, message, error); }
  });
}

// Activity: the audit trail, newest first, live.
const activity = document.getElementById("activity");
if (activity) {
  const body = activity.querySelector("tbody");
  const byAe = document.getElementById("filter-ae");
  const byOutcome = document.getElementById("filter-outcome");
  function filter(row) {
    const ae = byAe.value.trim().toUpperCase();
    const hidden = (ae && !row.dataset.ae.toUpperCase().includes(ae)) ||
      (byOutcome.value && row.dataset.outcome !== byOutcome.value);
    row.classList.toggle("hidden", Boolean(hidden));
  }
  const filterAll = () => body.querySelectorAll("tr").forEach(filter);
  byAe.addEventListener("input", filterAll);
  byOutcome.addEventListener("change", filterAll);
  function cell(row, text) {
    const td = row.insertCell();
    td.textContent = text;
    return td;
  }
  function add(event) {
    const row = document.createElement("tr");
    row.className = event.outcome;
    row.dataset.ae = event.calling_ae;
    row.dataset.outcome = event.outcome;
    cell(row, event.time.substring(11, 23));
    cell(row, event.operation);
    cell(row, event.calling_ae);
    const status = event.status === null ? "" :
      " 0x" + event.status.toString(16).toUpperCase().padStart(4, "0");
    cell(row, event.outcome + status);
    const detail = cell(row, event.detail);
    const tip = event.advice;
    if (tip) {
      const div = document.createElement("div");
      div.className = "advice";
      div.textContent = "What to change: " + tip;
      detail.appendChild(div);
    }
    filter(row);
    body.insertBefore(row, body.firstChild);
  }
  const stream = new EventSource(`/api/audit/stream?after=${document.body.dataset.after}`);
  const live = document.getElementById("live");
  stream.addEventListener("audit", (message) => add(JSON.parse(message.data)));
  stream.onopen = () => { live.textContent = "live"; };
  stream.onerror = () => { live.textContent = "reconnecting..."; };
}

// Faults: add a rule, clear them all.
const faultForm = document.getElementById("fault-form");
if (faultForm) {
  const message = document.getElementById("fault-message");
  faultForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const rule = {};
    faultForm.querySelectorAll("[name]").forEach((input) => {
      const value = fieldValue(input);
      if (value !== undefined && value !== false) rule[input.name] = value;
    });
    try {
      await api("POST", "/api/faults", rule);
      location.reload();
    } catch (error) { showError(faultForm, message, error); }
  });
  document.getElementById("clear-faults").addEventListener("click", async () => {
    await api("DELETE", "/api/faults");
    location.reload();
  });
}

// API: every operation of the OpenAPI document, and a form to try it.
if (document.body.dataset.docs !== undefined) {
  const root = document.getElementById("operations");
  api("GET", "/api/openapi.json").then((doc) => {
    for (const [path, methods] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(methods)) {
        const section = document.createElement("details");
        const summary = document.createElement("summary");
        summary.textContent = `${method.toUpperCase()} ${path} - ${operation.summary || ""}`;
        section.appendChild(summary);
        const params = (operation.parameters || []).map((p) => p.name);
        const inputs = {};
        for (const name of params) {
          const label = document.createElement("label");
          label.textContent = name + " ";
          inputs[name] = document.createElement("input");
          label.appendChild(inputs[name]);
          section.appendChild(label);
        }
        let bodyInput = null;
        if (operation.requestBody) {
          bodyInput = document.createElement("textarea");
          bodyInput.rows = 4;
          bodyInput.cols = 60;
          bodyInput.value = "{}";
          section.appendChild(bodyInput);
        }
        const button = document.createElement("button");
        button.textContent = "Try";
        const output = document.createElement("pre");
        button.addEventListener("click", async () => {
          let url = path;
          const query = new URLSearchParams();
          for (const p of operation.parameters || []) {
            const value = inputs[p.name].value;
            if (p.in === "path") url = url.replace(`{${p.name}}`, encodeURIComponent(value));
            else if (value) query.set(p.name, value);
          }
          if ([...query].length) url += "?" + query;
          try {
            const result = await api(method.toUpperCase(), url,
              bodyInput ? JSON.parse(bodyInput.value) : undefined);
            output.textContent = JSON.stringify(result, null, 2);
          } catch (error) { output.textContent = JSON.stringify(error, null, 2); }
        });
        section.appendChild(button);
        section.appendChild(output);
        root.appendChild(section);
      }
    }
  });
}
