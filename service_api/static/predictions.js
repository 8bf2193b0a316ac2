// Predictions on the planner page: the predicted failure time with its 10th-90th percentile
// interval and the probability of failure within the horizon (work queue and asset view), and
// the evidence behind them: which sensors are anomalous, since when, and each anomaly marked on
// the telemetry chart, and the product model's learned order rule (when P(fail) opens an order). Uses app.js's helpers (el, api, fmtTime, fmtNum, $); every API value is
// inserted as text. Loaded after app.js, which calls these hooks when present.
"use strict";

// eslint-disable-next-line no-var
var predictions = (() => {
  let current = null; // GET /assets/{id}/prediction of the asset on screen

  const pct = (p) => (p === null || p === undefined ? "–" : `${Math.round(100 * p)} %`);
  const span = (lo, hi) => (lo && hi ? `${fmtTime(lo)} – ${fmtTime(hi)}` : "");

  // Work-queue cell: predicted failure, its interval below, probability in the tooltip.
  function failureCell(o) {
    if (!o.predicted_failure_at) return el("td", {}, "–");
    const p = o.detail && o.detail.p_fail !== undefined ? ` · P(fail within horizon) ${pct(o.detail.p_fail)}` : "";
    const iv = span(o.predicted_failure_lo, o.predicted_failure_hi);
    return el("td", { class: "pred", title: `10th–90th percentile: ${iv || "n/a"}${p}` },
      fmtTime(o.predicted_failure_at), iv ? el("small", { class: "muted interval" }, iv) : "");
  }

  function modeRow(m) {
    const sig = Object.entries(m.signature || {})
      .sort((a, b) => Math.abs(b[1]) - Math.abs(a[1]))
      .map(([s, w]) => `${s} ${w > 0 ? "↑" : "↓"}`).join(", ");
    return el("tr", {},
      el("td", {}, m.mode),
      el("td", { class: m.p_fail > 0.5 ? "bad" : "" }, pct(m.p_fail)),
      el("td", {}, m.failure_at ? fmtTime(m.failure_at) : "–"),
      el("td", {}, span(m.failure_lo, m.failure_hi) || "–"),
      el("td", {}, fmtNum(m.risk, 2)),
      el("td", { title: m.signature_source === "learned" ? `learned from ${m.learned_from} failures` : "manufacturer's directions" },
        sig || "–", el("small", { class: "muted" }, ` (${m.signature_source})`)),
      el("td", { title: m.alarm_level_source === "learned" ? `learned from ${m.alarm_level_from} failures` : "the service's default" },
        m.alarm_level_source === "learned" ? fmtNum(m.alarm_level, 2) : "default"),
    );
  }

  // The learned order rule: when the predicted probability of failure opens an order.
  function orderRule(r) {
    if (!r) return ["Predictive orders open from detection's evidence (no order rule learned for this model yet)."];
    const held = r.held_out_recall === null ? "" : `; held out: ${pct(r.held_out_recall)} of failures caught within the horizon`;
    return [`Orders also open from P(fail): ${r.rule} (chosen on ${r.failures} failures${held}).`];
  }

  function render(p) {
    const box = $("#a-prediction");
    if (!box) return;
    const horizon = p.modes.find((m) => m.horizon_h)?.horizon_h;
    const evidence = p.sensors.length
      ? [`Anomalous since ${fmtTime(p.since)}: `,
        ...p.sensors.slice(0, 6).map((s, i) => el("span", { class: "evidence" },
          `${i ? ", " : ""}${s.sensor} (${s.anomalies}×, |z| up to ${fmtNum(s.max_abs_z, 1)}, last ${fmtTime(s.last)})`))]
      : [p.last_repair_at ? `No anomalies since the last repair (${fmtTime(p.last_repair_at)}).` : "No anomalies recorded."];
    box.replaceChildren(
      el("h3", {}, "Predicted failure", horizon ? el("small", { class: "muted" }, ` (probability within ${fmtNum(horizon, 0)} h)`) : ""),
      el("table", { id: "a-pred" },
        el("thead", {}, el("tr", {}, ...["Mode", "P(fail)", "Predicted failure", "10th–90th percentile", "Risk",
          "Signature", "Order level"].map((h) => el("th", {}, h)))),
        el("tbody", {}, ...p.modes.map(modeRow))),
      el("p", { id: "a-evidence" }, ...evidence),
      el("p", { id: "a-order-rule", class: "muted" }, ...orderRule(p.order_rule)),
    );
  }

  async function showAsset(a) {
    try {
      current = await api(`/assets/${encodeURIComponent(a.asset_id)}/prediction`);
      render(current);
      markChart($("#chart svg"));
    } catch (e) {
      current = null;
      const box = $("#a-prediction");
      if (box) box.replaceChildren(el("p", { class: "bad" }, e.message));
    }
  }

  // Anomalies on the telemetry chart: the charted sensor's as red lines, others' as grey ticks.
  function markChart(svg) {
    const raw = svg && svg.getAttribute ? svg.getAttribute("data-axis") : null;
    if (!raw || !current) return;
    const ax = JSON.parse(raw);
    const sensor = $("#a-sensor") ? $("#a-sensor").value : null;
    const NS = "http://www.w3.org/2000/svg";
    svg.querySelectorAll(".anom").forEach((n) => n.remove());
    for (const x of current.anomalies) {
      const t = new Date(x.time).getTime();
      if (t < ax.t0 || t > ax.t1) continue;
      const px = ax.L + ((t - ax.t0) / (ax.t1 - ax.t0)) * (ax.W - ax.L - ax.R);
      const mine = x.sensor === sensor;
      const line = document.createElementNS(NS, "line");
      const attrs = { x1: px, x2: px, y1: mine ? ax.T : ax.H - ax.B - 6, y2: ax.H - ax.B,
        class: mine ? "anom anom-here" : "anom anom-other" };
      for (const [k, v] of Object.entries(attrs)) line.setAttribute(k, v);
      const title = document.createElementNS(NS, "title");
      title.textContent = `${fmtTime(x.time)} ${x.sensor || "multivariate"} z ${fmtNum(x.z, 1)}`;
      line.append(title);
      svg.append(line);
    }
  }

  return { failureCell, showAsset, markChart, get current() { return current; } };
})();
