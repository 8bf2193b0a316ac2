// Prognos planner page: the technician board (scheduling/ on the server side, /api/v1/schedule).
// Each technician's horizon as a timeline (travel, then the visit), orders the plan left out with
// the reason, pin / unpin and re-plan buttons, and the sites on a plain plot of their
// coordinates (no map tiles). Loaded before app.js; uses its helpers (el, api, can, dialog,
// showError, fmt*) at call time. Every value goes into the page as text.
"use strict";

globalThis.boardUI = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"];
  let plan = null;

  function svgEl(tag, attrs, text) {
    const n = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    if (text !== undefined) { const t = document.createElementNS(NS, "title"); t.textContent = text; n.append(t); }
    return n;
  }

  async function call(path, opts) {
    try { await api(path, opts); showError(""); await load(); } catch (e) { showError(e.message); }
  }

  const replan = () => call("/schedule/plan", { method: "POST", body: JSON.stringify({ regions: plan ? plan.regions : null }) });

  function pinDialog(orderId, techId, startsAt) {
    const techs = el("select", {}, ...(plan ? plan.technicians : []).map((t) =>
      el("option", Object.assign({ value: t.technician_id }, t.technician_id === techId ? { selected: "" } : {}),
        `${t.technician_id} · ${t.name} (${t.region})`)));
    const at = el("input", { type: "datetime-local", value: startsAt ? new Date(startsAt).toISOString().slice(0, 16) : "" });
    dialog(`Pin order ${orderId}`, [
      el("label", {}, "Technician", techs),
      el("label", {}, "Start (UTC, empty: any time in the horizon)", at),
    ], () => call(`/schedule/pins/${orderId}`, { method: "PUT",
      body: JSON.stringify({ technician_id: techs.value, starts_at: at.value ? `${at.value}:00Z` : null }) }));
  }

  function timeline(p) {
    const t0 = Date.parse(p.horizon_start), t1 = Date.parse(p.horizon_end);
    const W = 900, L = 130, rowH = 26, H = 24 + rowH * p.technicians.length;
    const x = (t) => L + ((Date.parse(t) - t0) / (t1 - t0)) * (W - L - 10);
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "board-timeline", role: "img", "aria-label": "technician timelines" });
    for (let d = new Date(t0); d <= t1; d = new Date(d.getTime() + 6 * 3600e3)) {
      const xx = x(d.toISOString());
      svg.append(svgEl("line", { x1: xx, x2: xx, y1: 14, y2: H, stroke: "#ddd" }));
      const lab = svgEl("text", { x: xx + 2, y: 11, "font-size": 9, fill: "#666" });
      lab.textContent = d.toISOString().slice(5, 13).replace("T", " ") + "h";
      svg.append(lab);
    }
    p.technicians.forEach((tech, i) => {
      const y = 20 + i * rowH;
      const name = svgEl("text", { x: 4, y: y + 15, "font-size": 11 });
      name.textContent = tech.technician_id;
      svg.append(name);
      svg.append(svgEl("line", { x1: L, x2: W - 10, y1: y + 11, y2: y + 11, stroke: "#eee" }));
      for (const v of p.visits.filter((v) => v.technician_id === tech.technician_id)) {
        const dep = new Date(Date.parse(v.arrive_at) - v.travel_min * 60e3).toISOString();
        svg.append(svgEl("rect", { x: x(dep), y: y + 8, width: Math.max(1, x(v.arrive_at) - x(dep)), height: 6, fill: "#bbb" },
          `travel ${v.travel_km.toFixed(1)} km, ${Math.round(v.travel_min)} min`));
        const r = svgEl("rect", { x: x(v.starts_at), y: y + 2, width: Math.max(2, x(v.ends_at) - x(v.starts_at)), height: 18,
          fill: v.on_time ? COLORS[i % COLORS.length] : "#d62728", stroke: v.pinned ? "#000" : "none", "stroke-width": 2,
          class: "visit", "data-order": v.order_id, tabindex: 0 },
          `order ${v.order_id} · ${v.asset_id} · ${v.mode} · P${v.priority} · ${fmtTime(v.starts_at)}–${fmtTime(v.ends_at)}${v.pinned ? " · pinned" : ""}${v.on_time ? "" : " · late"}`);
        if (can("assign")) r.addEventListener("click", () => pinDialog(v.order_id, v.technician_id, v.starts_at));
        svg.append(r);
      }
    });
    return svg;
  }

  function sitesPlot(p) {
    const pts = [...p.visits, ...p.unscheduled].filter((o) => o.lat !== null && o.lon !== null);
    const homes = p.technicians.map((t) => ({ lat: t.home_lat, lon: t.home_lon }));
    const all = [...pts, ...homes];
    const W = 420, H = 320, pad = 16;
    const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "board-sites", role: "img", "aria-label": "sites by coordinates" });
    if (!all.length) return svg;
    const lats = all.map((o) => o.lat), lons = all.map((o) => o.lon);
    const [la0, la1, lo0, lo1] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
    const X = (lon) => pad + ((lon - lo0) / Math.max(1e-6, lo1 - lo0)) * (W - 2 * pad);
    const Y = (lat) => H - pad - ((lat - la0) / Math.max(1e-6, la1 - la0)) * (H - 2 * pad);
    const color = Object.fromEntries(p.technicians.map((t, i) => [t.technician_id, COLORS[i % COLORS.length]]));
    p.technicians.forEach((t) => svg.append(svgEl("rect", { x: X(t.home_lon) - 4, y: Y(t.home_lat) - 4, width: 8, height: 8,
      fill: color[t.technician_id] }, `${t.technician_id} home base`)));
    for (const v of p.visits) if (v.lat !== null) svg.append(svgEl("circle", { cx: X(v.lon), cy: Y(v.lat), r: 4,
      fill: color[v.technician_id] || "#333" }, `${v.site_id}: order ${v.order_id} → ${v.technician_id}`));
    for (const u of p.unscheduled) if (u.lat !== null) svg.append(svgEl("path", {
      d: `M${X(u.lon) - 4},${Y(u.lat) - 4}l8,8m0,-8l-8,8`, stroke: "#d62728", "stroke-width": 2 }, `${u.site_id}: order ${u.order_id} unscheduled: ${u.reason}`));
    return svg;
  }

  function render(root) {
    const head = el("div", { class: "bar" }, el("h2", {}, "Technician board"));
    if (can("schedule")) head.append(el("button", { id: "board-replan", onclick: replan }, plan ? "Re-plan" : "Plan now"));
    if (!plan) { root.replaceChildren(head, el("p", { class: "muted" }, "No plan yet.")); return; }
    const s = plan.summary || {};
    head.append(el("span", { class: "muted" }, `plan ${plan.plan_id} · ${fmtTime(plan.horizon_start)} – ${fmtTime(plan.horizon_end)} · `
      + `${plan.visits.length} visits · ${fmtNum(plan.km)} km · ${s.waiting_for_parts || 0} waiting for parts`
      + `${plan.regions ? " · " + plan.regions.join(", ") : ""}`));
    const rows = plan.unscheduled.map((u) => el("tr", {}, el("td", {}, String(u.order_id)), el("td", {}, `P${u.priority}`),
      el("td", {}, u.asset_id), el("td", {}, u.mode), el("td", {}, u.reason),
      el("td", {}, can("assign") ? el("button", { onclick: () => pinDialog(u.order_id, null, null) }, "Pin…") : "")));
    const table = el("table", { id: "board-unscheduled" },
      el("thead", {}, el("tr", {}, ...["#", "Prio", "Asset", "Mode", "Why not planned", ""].map((h) => el("th", {}, h)))),
      el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 6, class: "muted" }, "every order is planned"))])));
    root.replaceChildren(head, timeline(plan),
      el("div", { class: "split" }, el("div", {}, el("h3", {}, "Not planned"), table),
        el("div", {}, el("h3", {}, "Sites"), sitesPlot(plan))));
  }

  async function load() {
    const root = document.querySelector("#board");
    if (!root) return;
    // the fleet's schedule is for the service organisation (the `fleet` right), not a customer
    root.hidden = !can("fleet");
    if (!can("fleet")) return;
    const p = await api("/schedule");
    plan = p.plan_id === null ? null : p;
    render(root);
  }

  return { load };
})();
