// Prognos planner page: triage, SLA risk and service figures (orders/ on the server side).
// Loaded before app.js and called from it through globalThis.ordersUI; uses app.js's helpers
// (el, api, can, fill, dialog, fmt*) at call time. Every value goes into the page as text.
"use strict";

globalThis.ordersUI = (() => {
  const DECISION = ["false_alarm", "not_needed", "duplicate", "customer_declined", "out_of_contract", "other"];
  const HOLD = ["waiting_parts", "waiting_customer"];
  const pctOrDash = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)} %`);

  async function post(path, body) {
    try {
      await api(path, { method: "POST", body: JSON.stringify(body || {}) });
      showError("");
      await refresh();
    } catch (e) { showError(e.message); }
  }

  function select(options) {
    return el("select", {}, ...options.map((v) => el("option", { value: v }, v.replace(/_/g, " "))));
  }

  function rejectDialog(o) {
    const reason = select(DECISION);
    const note = el("textarea", { rows: 2, maxlength: 2000 });
    dialog(`Reject order ${o.order_id} (${o.asset_id}, ${o.mode})`, [
      el("label", {}, "Reason (false alarm: detection re-baselines this asset and mode)", reason),
      el("label", {}, "Note", note),
    ], () => post(`/service-orders/${o.order_id}/reject`, { reason: reason.value, note: note.value }));
  }

  function holdDialog(o) {
    const reason = select(HOLD);
    const note = el("textarea", { rows: 2, maxlength: 2000 });
    dialog(`Put order ${o.order_id} on hold (SLA clocks pause)`, [
      el("label", {}, "Waiting for", reason), el("label", {}, "Note", note),
    ], () => patchOrder(o, { status: "on_hold", reason: reason.value, note: note.value }));
  }

  async function historyDialog(o) {
    try {
      const [hist, clocks] = await Promise.all([
        api(`/service-orders/${o.order_id}/history`), api(`/sla/orders/${o.order_id}`),
      ]);
      const clockRow = (c) => c ? el("tr", {}, el("td", {}, c.name), el("td", { class: c.state === "breached" ? "bad" : c.state === "nearing_breach" ? "warn" : "" }, c.state.replace(/_/g, " ")),
        el("td", {}, fmtTime(c.deadline)), el("td", {}, fmtNum(c.hours_left)), el("td", {}, fmtNum(c.paused_h))) : null;
      const rows = [clockRow(clocks.response), clockRow(clocks.restore)].filter(Boolean);
      const repair = clocks.repair_median_h === null ? "–"
        : `${fmtNum(clocks.repair_median_h)} h (${fmtNum(clocks.repair_lo_h)}–${fmtNum(clocks.repair_hi_h)}, ${clocks.repair_source})`;
      dialog(`Order ${o.order_id} · ${o.asset_id} · ${o.mode}`, [
        el("p", {}, `Breach probability: ${pctOrDash(clocks.breach_probability)} · repair time ${repair}`),
        el("table", {}, el("thead", {}, el("tr", {}, ...["Clock", "State", "Deadline", "Hours left", "Paused h"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...rows)),
        el("table", { class: "history" }, el("thead", {}, el("tr", {}, ...["When", "From", "To", "Actor", "Reason", "Note"].map((h) => el("th", {}, h)))),
          el("tbody", {}, ...hist.map((h) => el("tr", {}, el("td", {}, fmtTime(h.at)), el("td", {}, h.from_status || "–"),
            el("td", {}, h.to_status), el("td", {}, h.actor), el("td", {}, h.reason || "–"), el("td", {}, h.note))))),
      ], () => {});
    } catch (e) { showError(e.message); }
  }

  function actions(o) {
    const b = (label, fn) => el("button", { type: "button", onclick: fn }, label);
    const out = [];
    if (o.status === "proposed" && can("triage")) {
      out.push(b("Approve", () => post(`/service-orders/${o.order_id}/approve`, {})));
      out.push(b("Reject", () => rejectDialog(o)));
    }
    if (["approved", "scheduled", "in_progress"].includes(o.status) && can("hold")) out.push(b("Hold", () => holdDialog(o)));
    if (o.status === "on_hold" && can("hold")) out.push(b("Resume", () => post(`/service-orders/${o.order_id}/resume`, {})));
    out.push(b("History", () => historyDialog(o)));   // reading: every role
    return out;
  }

  function section() {
    let box = document.querySelector("#orders-panel");
    if (!box) return null;
    if (!box.dataset || !box.dataset.built) {
      box.replaceChildren(
        el("h2", {}, "SLA risk ", el("small", { class: "muted" }, "(live orders by probability of missing the restore target)")),
        el("table", { id: "o-risk" }, el("thead", {}, el("tr", {}, ...["#", "Asset", "Mode", "Tier", "Status", "Restore by", "Arrival", "Repair h (10–90 %)", "P(breach)"].map((h) => el("th", {}, h)))), el("tbody")),
        el("h3", {}, "Fleet incidents ", el("small", { class: "muted" }, "(many assets of one model crossing risk at once)")),
        el("table", { id: "o-incidents" }, el("thead", {}, el("tr", {}, ...["#", "Model", "Opened", "Assets / fleet", "Modes", "Orders", "Status", ""].map((h) => el("th", {}, h)))), el("tbody")),
        el("h3", {}, "Detection precision ", el("small", { class: "muted" }, "(predictive orders, 90 days: confirmed vs false alarm)")),
        el("table", { id: "o-precision" }, el("thead", {}, el("tr", {}, ...["Model", "Mode", "Orders", "Confirmed", "False alarms", "Live", "Precision"].map((h) => el("th", {}, h)))), el("tbody")),
        el("h3", {}, "First-time fix ", el("small", { class: "muted" }, "(not fixed if repeated within 30 days or the technician said so)")),
        el("table", { id: "o-ftf" }, el("thead", {}, el("tr", {}, ...["Model", "Repairs", "Judged", "First-time fix", "Repeat rate"].map((h) => el("th", {}, h)))), el("tbody")),
        el("h3", {}, "Contract renewals ", el("small", { class: "muted" }, "(ending within 90 days)")),
        el("table", { id: "o-renewals" }, el("thead", {}, el("tr", {}, ...["Contract", "Asset", "Tier", "Ends", "Availability", "Restore SLA"].map((h) => el("th", {}, h)))), el("tbody")),
      );
      if (box.dataset) box.dataset.built = "1";
    }
    return box;
  }

  async function load() {
    if (!section()) return;
    const [risk, incidents, figs, renewals] = await Promise.all([
      api("/sla/at-risk?limit=15"), api("/fleet-incidents?status=open"), api("/service-figures"),
      api("/service-figures/renewals?limit=15"),
    ]);
    fill(document.querySelector("#o-risk tbody"), risk.items.map((o) => el("tr", {},
      el("td", {}, String(o.order_id)), el("td", {}, o.asset_id), el("td", {}, o.mode), el("td", {}, o.sla_tier || "–"),
      el("td", {}, o.status.replace(/_/g, " ")), el("td", {}, fmtTime(o.restore && o.restore.deadline)), el("td", {}, fmtTime(o.arrival)),
      el("td", {}, o.repair_median_h === null ? "–" : `${fmtNum(o.repair_median_h)} (${fmtNum(o.repair_lo_h)}–${fmtNum(o.repair_hi_h)})`),
      el("td", { class: o.breach_probability > 0.5 ? "bad" : o.breach_probability > 0.2 ? "warn" : "" }, pctOrDash(o.breach_probability)),
    )), "no live orders with an SLA");
    fill(document.querySelector("#o-incidents tbody"), incidents.map((f) => el("tr", {},
      el("td", {}, String(f.incident_id)), el("td", {}, f.model_id), el("td", {}, fmtTime(f.opened_at)),
      el("td", {}, `${f.assets} / ${f.fleet_size}`), el("td", {}, f.modes.join(", ")), el("td", {}, String(f.orders)),
      el("td", {}, f.status),
      el("td", {}, ...(can("triage") ? [
        el("button", { type: "button", onclick: () => post(`/fleet-incidents/${f.incident_id}/resolve`, { decision: "confirmed" }) }, "Confirm"),
        el("button", { type: "button", onclick: () => post(`/fleet-incidents/${f.incident_id}/resolve`, { decision: "dismissed" }) }, "Dismiss"),
      ] : [])),
    )), "no open fleet incidents");
    fill(document.querySelector("#o-precision tbody"), figs.precision.map((p) => el("tr", {},
      el("td", {}, p.model_id), el("td", {}, p.mode), el("td", {}, String(p.orders)), el("td", {}, String(p.confirmed)),
      el("td", {}, String(p.false_alarms)), el("td", {}, String(p.live)), el("td", {}, pctOrDash(p.precision)),
    )), "no predictive orders in the window");
    fill(document.querySelector("#o-ftf tbody"), figs.first_time_fix.filter((r) => r.mode === null).map((r) => el("tr", {},
      el("td", {}, r.model_id || "fleet"), el("td", {}, String(r.repairs)), el("td", {}, String(r.judged)),
      el("td", {}, pctOrDash(r.first_time_fix_rate)), el("td", {}, pctOrDash(r.repeat_rate)),
    )), "no repairs in the window");
    fill(document.querySelector("#o-renewals tbody"), renewals.map((r) => el("tr", {},
      el("td", {}, r.contract_id), el("td", {}, r.asset_id), el("td", {}, r.tier), el("td", {}, r.ends_on),
      el("td", {}, pctOrDash(r.availability)),
      el("td", {}, `${r.restore_met} met / ${r.restore_breached} breached`),
    )), "none");
  }

  return { actions, load };
})();
