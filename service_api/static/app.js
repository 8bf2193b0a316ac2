// Prognos planner page: vanilla JS against /api/v1, no build step, no external resources.
// Every value from the API goes into the page as text (never as HTML).
"use strict";

const API = "/api/v1";
const PAGE = 25;
const state = { token: localStorage.getItem("prognos.token") || "", me: null, offset: 0, asset: null };
const $ = (sel) => document.querySelector(sel);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children.flat()) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

const fmtTime = (t) => (t ? new Date(t).toISOString().slice(0, 16).replace("T", " ") : "–");
const fmtNum = (x, d = 1) => (x === null || x === undefined ? "–" : Number(x).toFixed(d));
const fmtPct = (x) => (x === null || x === undefined ? "–" : `${Number(x).toFixed(1)} %`);
const can = (right) => !!state.me && state.me.rights.includes(right);

function showError(msg) {
  const box = $("#error");
  box.textContent = msg || "";
  box.hidden = !msg;
}

async function api(path, opts = {}) {
  const res = await fetch(API + path, {
    ...opts,
    headers: { Authorization: `Bearer ${state.token}`, "Content-Type": "application/json", ...(opts.headers || {}) },
  });
  if (res.status === 204) return null;
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    let detail = body.detail;
    if (Array.isArray(detail)) detail = detail.map((d) => `${(d.loc || []).join(".")}: ${d.msg}`).join("; ");
    const err = new Error(`${res.status}: ${detail || res.statusText}`);
    err.status = res.status;
    throw err;
  }
  return body;
}

function fill(tbody, rows, empty = "nothing here") {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 12, class: "muted" }, empty))]));
}

// --- work queue ---------------------------------------------------------------------------

function queueQuery() {
  const p = new URLSearchParams({ limit: PAGE, offset: state.offset });
  const status = $("#f-status").value;
  for (const s of status === "live" ? ["proposed", "approved", "scheduled", "in_progress", "on_hold"] : [status]) p.append("status", s);
  if ($("#f-kind").value) p.set("kind", $("#f-kind").value);
  if ($("#f-tier").value) p.set("tier", $("#f-tier").value);
  return p;
}

function actionsFor(o) {
  const b = (label, fn) => el("button", { type: "button", onclick: fn }, label);
  const out = [];
  if (["approved", "scheduled"].includes(o.status) && can("schedule")) out.push(b(o.status === "approved" ? "Schedule" : "Reschedule", () => scheduleDialog(o)));
  if (o.status === "scheduled" && can("start")) out.push(b("Start", () => patchOrder(o, { status: "in_progress" })));
  if (o.status === "in_progress" && can("complete")) out.push(b("Complete", () => completeDialog(o)));
  if (["proposed", "approved", "scheduled", "on_hold"].includes(o.status) && can("cancel")) out.push(b("Cancel", () => {
    const note = prompt(`Cancel order ${o.order_id}? Reason:`);
    if (note !== null) patchOrder(o, { status: "cancelled", reason: "other", note });
  }));
  if (globalThis.ordersUI) out.push(...globalThis.ordersUI.actions(o));   // triage, hold, history: orders.js
  return out;
}

function respondCell(o) {
  if (!o.respond_by) return el("td", {}, "–");
  const hours = (new Date(o.respond_by) - Date.now()) / 3.6e6;
  const live = ["proposed", "approved", "scheduled"].includes(o.status);
  const cls = live && hours < 0 ? "bad" : live && hours < 8 ? "warn" : "";
  return el("td", { class: cls, title: live ? `${hours.toFixed(1)} h left` : "" }, fmtTime(o.respond_by));
}

let queueSeq = 0;  // answers can arrive out of order when filters change quickly: the last asked wins

async function loadQueue() {
  const seq = ++queueSeq;
  const page = await api(`/service-orders?${queueQuery()}`);
  if (seq !== queueSeq) return;
  fill($("#queue tbody"), page.items.map((o) => el("tr", {},
    el("td", {}, String(o.order_id)),
    el("td", {}, el("span", { class: `prio p${o.priority}` }, String(o.priority))),
    el("td", {}, el("a", { class: "asset", onclick: () => openAsset(o.asset_id) }, o.asset_id)),
    el("td", {}, o.mode),
    el("td", {}, fmtNum(o.risk, 2)),
    typeof predictions !== "undefined" ? predictions.failureCell(o) : el("td", {}, fmtTime(o.predicted_failure_at)),
    el("td", {}, o.predicted_mttr_h === null ? "–" : `${fmtNum(o.predicted_mttr_h)} h`),
    respondCell(o),
    el("td", {}, o.sla_tier || "–"),
    el("td", {}, o.status.replace("_", " ")),
    el("td", {}, `${fmtTime(o.scheduled_for)}${o.assignee ? " · " + o.assignee : ""}`),
    el("td", {}, actionsFor(o)),
  )), "no orders match");
  $("#q-count").textContent = `${page.count} orders`;
  $("#page").textContent = page.count ? `${state.offset + 1}–${Math.min(state.offset + PAGE, page.count)} of ${page.count}` : "";
  $("#prev").disabled = state.offset === 0;
  $("#next").disabled = state.offset + PAGE >= page.count;
}

async function patchOrder(o, body) {
  try {
    await api(`/service-orders/${o.order_id}`, { method: "PATCH", body: JSON.stringify(body) });
    showError("");
    await refresh();
  } catch (e) { showError(e.message); }
}

function dialog(title, fields, onOk) {
  $("#dlg-title").textContent = title;
  $("#dlg-body").replaceChildren(...fields);
  const dlg = $("#dlg");
  dlg.onclose = () => { if (dlg.returnValue === "ok") onOk(); };
  dlg.returnValue = "";
  dlg.showModal();
}

function localInput(iso) {
  const d = iso ? new Date(iso) : new Date(Date.now() + 864e5);
  return new Date(d.getTime() - d.getTimezoneOffset() * 6e4).toISOString().slice(0, 16);
}

function scheduleDialog(o) {
  const when = el("input", { type: "datetime-local", required: "", value: localInput(o.scheduled_for) });
  const who = el("input", { type: "text", maxlength: 100, value: o.assignee || "", placeholder: "technician" });
  const prio = el("input", { type: "number", min: 1, max: 5, value: o.priority });
  const note = el("textarea", { rows: 2, maxlength: 2000 });
  dialog(`Schedule order ${o.order_id} (${o.asset_id}, ${o.mode})`, [
    el("label", {}, "Visit at (local time)", when), el("label", {}, "Assignee", who),
    el("label", {}, "Priority (1 = most urgent)", prio), el("label", {}, "Note", note),
  ], () => {
    const body = { scheduled_for: new Date(when.value).toISOString(), priority: Number(prio.value), note: note.value };
    if (o.status === "approved") body.status = "scheduled";
    if (who.value.trim()) body.assignee = who.value.trim();
    patchOrder(o, body);
  });
}

// the technician's as-found grade of a failure mode (the API's `as_found`; blank: not inspected)
const AS_FOUND = ["good", "worn", "degraded", "failed"];

async function completeDialog(o) {
  const ftf = el("input", { type: "checkbox", checked: "" });
  const note = el("textarea", { rows: 2, maxlength: 2000 });
  let modes = [];
  try {
    modes = (await api(`/assets/${encodeURIComponent(o.asset_id)}?recent=1`)).modes.map((m) => m.mode);
  } catch (e) { showError(`as-found grades unavailable: ${e.message}`); }
  const found = modes.map((m) => [m, el("select", { name: `as-found-${m}` },
    el("option", { value: "" }, "not inspected"), ...AS_FOUND.map((g) => el("option", { value: g }, g)))]);
  dialog(`Complete order ${o.order_id} (${o.asset_id}, ${o.mode})`, [
    el("label", {}, ftf, " Fixed on the first visit"),
    ...(found.length ? [el("fieldset", { class: "as-found" }, el("legend", {}, "As found (every mode you inspected)"),
      ...found.map(([m, sel]) => el("label", {}, m.replace(/_/g, " "), sel)))] : []),
    el("label", {}, "Note", note),
  ], () => {
    const body = { status: "completed", first_time_fix: ftf.checked, note: note.value };
    const graded = found.filter(([, sel]) => sel.value);
    if (graded.length) body.as_found = Object.fromEntries(graded.map(([m, sel]) => [m, sel.value]));
    patchOrder(o, body);
  });
}

// --- fleet standing -----------------------------------------------------------------------

async function loadStanding() {
  const [sla, up, assets] = await Promise.all([
    api("/sla"), api("/uptime?group_by=model"), api("/assets?limit=10&sort=risk"),
  ]);
  const f = up.fleet;
  const overdue = sla.at_risk.filter((o) => o.overdue).length;
  $("#kpis").replaceChildren(
    card(fmtPct(f.availability === null ? null : 100 * f.availability), "fleet availability, 30 d"),
    card(fmtNum(f.mtbf_h, 0), "MTBF h"), card(fmtNum(f.mttr_h), "MTTR h (downtime per failure)"),
    card(String(f.failures), "failures, 30 d"),
    card(String(sla.at_risk.length), `orders at SLA risk (${overdue} overdue)`),
  );
  fill($("#sla tbody"), sla.by_tier.map((t) => el("tr", {},
    el("td", {}, t.key), el("td", {}, String(t.orders)),
    el("td", {}, `${fmtPct(t.response_compliance_pct)} (${t.response_breached} late)`),
    el("td", {}, `${fmtPct(t.restore_compliance_pct)} (${t.restore_breached} late)`),
    el("td", { class: t.compliance_pct !== null && t.compliance_pct < 90 ? "bad" : "good" }, fmtPct(t.compliance_pct)),
    el("td", {}, String(t.pending)),
    el("td", {}, t.first_time_fix_rate === null ? "–" : fmtPct(100 * t.first_time_fix_rate)),
  )), "no orders with an SLA in the window");
  fill($("#atrisk tbody"), sla.at_risk.map((o) => el("tr", {},
    el("td", {}, String(o.order_id)),
    el("td", {}, el("a", { class: "asset", onclick: () => openAsset(o.asset_id) }, o.asset_id)),
    el("td", {}, o.customer_id), el("td", {}, o.sla_tier), el("td", {}, fmtTime(o.respond_by)),
    el("td", { class: o.overdue ? "bad" : "warn" }, fmtNum(o.hours_left)),
  )), "none");
  fill($("#uptime tbody"), up.rows.map((r) => el("tr", {},
    el("td", {}, r.key), el("td", {}, String(r.assets)),
    el("td", {}, fmtPct(r.availability === null ? null : 100 * r.availability)),
    el("td", {}, fmtNum(r.downtime_h)), el("td", {}, String(r.failures)),
    el("td", {}, fmtNum(r.mtbf_h, 0)), el("td", {}, fmtNum(r.mttr_h)),
  )), "no assets");
  fill($("#assets tbody"), assets.items.map((a) => el("tr", {},
    el("td", {}, el("a", { class: "asset", onclick: () => openAsset(a.asset_id) }, a.asset_id)),
    el("td", {}, a.model_id), el("td", {}, a.site_name), el("td", {}, a.contract_tier || "–"),
    el("td", { class: a.risk > 0.5 ? "bad" : "" }, fmtNum(a.risk, 2)), el("td", {}, a.worst_mode || "–"),
    el("td", {}, fmtNum(a.rul_h, 0)), el("td", {}, String(a.open_orders)),
  )), "no assets");
}

function card(value, label) {
  return el("div", { class: "card" }, el("b", {}, value), el("span", {}, label));
}

// --- asset drill-down ---------------------------------------------------------------------

async function openAsset(id) {
  try {
    const a = await api(`/assets/${encodeURIComponent(id)}?recent=20`);
    state.asset = a;
    $("#asset").hidden = false;
    $("#a-title").textContent = `${a.asset_id} · ${a.model_name}`;
    $("#a-meta").textContent = [
      `serial ${a.serial}`, `${a.customer_name} / ${a.site_name} (${a.region || "–"})`,
      `installed ${a.install_date}`, a.lifecycle_stage.replace("_", " "),
      a.in_warranty ? `in warranty to ${a.warranty_end}` : "out of warranty",
      a.contract_tier ? `${a.contract_tier} contract to ${a.contract_ends_on}` : "no contract",
      `device ${a.device_id || "–"} (${a.device_status || "–"})`,
    ].join(" · ");
    fill($("#a-modes tbody"), a.modes.map((m) => el("tr", {},
      el("td", {}, m.mode), el("td", {}, fmtNum(m.health, 2)),
      el("td", { class: m.risk > 0.5 ? "bad" : "" }, fmtNum(m.risk, 2)),
      el("td", {}, fmtNum(m.rul_h, 0)), el("td", {}, fmtNum(m.nominal_mttr_h)), el("td", {}, fmtTime(m.updated_at)),
    )));
    fill($("#a-anoms tbody"), a.anomalies.map((x) => el("tr", {},
      el("td", {}, fmtTime(x.time)), el("td", {}, x.sensor || "multivariate"), el("td", {}, x.detector),
      el("td", {}, fmtNum(x.score, 2)))), "no anomalies");
    fill($("#a-orders tbody"), a.orders.map((o) => el("tr", {},
      el("td", {}, String(o.order_id)), el("td", {}, o.kind), el("td", {}, o.mode), el("td", {}, o.status),
      el("td", {}, fmtTime(o.opened_at)), el("td", {}, fmtTime(o.closed_at)))), "no orders");
    $("#a-sensor").replaceChildren(...a.sensors.map((s) => el("option", { value: s.name }, `${s.name} (${s.unit})`)));
    await loadChart();
    if (typeof predictions !== "undefined") await predictions.showAsset(a);
    $("#asset").scrollIntoView({ behavior: "smooth" });
  } catch (e) { showError(e.message); }
}

async function loadChart() {
  const a = state.asset;
  const box = $("#chart");
  if (!a || !a.sensors.length || !a.device_id) { box.replaceChildren(el("p", { class: "muted" }, "no telemetry")); return; }
  const p = new URLSearchParams({ sensor: $("#a-sensor").value, hours: $("#a-span").value });
  try {
    // the window ends at the asset's latest reading (the API's default 'to')
    const s = await api(`/assets/${encodeURIComponent(a.asset_id)}/telemetry?${p}`);
    $("#a-res").textContent = `${s.points.length} points · ${s.resolution} · ${s.unit}`;
    box.replaceChildren(svgChart(s.points));
    if (typeof predictions !== "undefined") predictions.markChart(box.firstChild);
  } catch (e) { box.replaceChildren(el("p", { class: "bad" }, e.message)); }
}

function svgChart(points) {
  const NS = "http://www.w3.org/2000/svg";
  const W = 640, H = 220, L = 44, R = 8, T = 8, B = 22;
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const mk = (tag, attrs, text) => {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) n.textContent = text;
    svg.append(n);
    return n;
  };
  if (!points.length) { mk("text", { x: W / 2 - 40, y: H / 2 }, "no readings in this window"); return svg; }
  const ts = points.map((p) => new Date(p.t).getTime());
  const lo = Math.min(...points.map((p) => p.min)), hi = Math.max(...points.map((p) => p.max));
  const t0 = ts[0], t1 = Math.max(ts[ts.length - 1], t0 + 1), span = hi - lo || 1;
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  svg.setAttribute("data-axis", JSON.stringify({ t0, t1, L, R, T, B, W, H })); // for overlays (predictions.js)
  const y = (v) => T + (1 - (v - lo) / span) * (H - T - B);
  mk("line", { x1: L, y1: H - B, x2: W - R, y2: H - B, class: "axis" });
  mk("line", { x1: L, y1: T, x2: L, y2: H - B, class: "axis" });
  mk("text", { x: 2, y: T + 8 }, fmtNum(hi, 2));
  mk("text", { x: 2, y: H - B }, fmtNum(lo, 2));
  mk("text", { x: L, y: H - 6 }, fmtTime(points[0].t));
  mk("text", { x: W - R - 90, y: H - 6 }, fmtTime(points[points.length - 1].t));
  if (points.some((p) => p.n > 1)) {
    const up = points.map((p, i) => `${x(ts[i]).toFixed(1)},${y(p.max).toFixed(1)}`);
    const down = points.map((p, i) => `${x(ts[i]).toFixed(1)},${y(p.min).toFixed(1)}`).reverse();
    mk("polygon", { points: [...up, ...down].join(" "), class: "band" });
  }
  mk("polyline", { points: points.map((p, i) => `${x(ts[i]).toFixed(1)},${y(p.avg).toFixed(1)}`).join(" "), class: "line" });
  return svg;
}

// --- wiring -------------------------------------------------------------------------------

async function refresh() {
  if (!state.token) { showError("Enter an API token (ask an admin: prognos api tokens create --name NAME --role planner)."); return; }
  try {
    state.me = await api("/me");
    $("#whoami").textContent = `${state.me.name} · ${state.me.role}`;
    showError("");
    await Promise.all([loadQueue(), loadStanding(), globalThis.ordersUI ? globalThis.ordersUI.load() : null,
      globalThis.boardUI ? globalThis.boardUI.load() : null]);
  } catch (e) {
    showError(e.status === 401 ? "This token is not valid (unknown, expired or revoked)." : e.message);
  }
}

$("#login").addEventListener("submit", (ev) => {
  ev.preventDefault();
  state.token = $("#token").value.trim();
  localStorage.setItem("prognos.token", state.token);
  $("#token").value = "";
  refresh();
});
$("#logout").addEventListener("click", () => {
  localStorage.removeItem("prognos.token");
  Object.assign(state, { token: "", me: null });
  $("#whoami").textContent = "";
  refresh();
});
for (const id of ["#f-status", "#f-kind", "#f-tier"]) $(id).addEventListener("change", () => { state.offset = 0; loadQueue().catch((e) => showError(e.message)); });
$("#refresh").addEventListener("click", refresh);
$("#prev").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadQueue(); });
$("#next").addEventListener("click", () => { state.offset += PAGE; loadQueue(); });
$("#a-close").addEventListener("click", () => { $("#asset").hidden = true; state.asset = null; });
$("#a-sensor").addEventListener("change", loadChart);
$("#a-span").addEventListener("change", loadChart);
refresh();
setInterval(() => { if (state.me && !$("#dlg").open) refresh(); }, 60000);
