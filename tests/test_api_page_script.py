"""The planner page's script run for real: Node executes service_api/static/app.js against the
API served by uvicorn on the test database, with a minimal DOM (no browser on this machine).
It must render the queue, the fleet standing, an asset drill-down with its SVG chart, and
schedule an order through the dialog, without an error shown. Skipped where Node is missing."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
import uvicorn

from ops.services.common import free_port
from tests import seed
from service_api.app import STATIC, create_app
from service_api.auth import create_token

NODE = shutil.which("node")

# A DOM just large enough for app.js: elements by selector, children, text, attributes,
# listeners; fetch goes to the live server.
HARNESS = r"""
const fs = require("fs"), vm = require("vm");
const BASE = process.env.BASE, TOKEN = process.env.TOKEN;
class Node {}
class Text extends Node { constructor(t) { super(); this.data = String(t); } get textContent() { return this.data; } }
class El extends Node {
  constructor(tag) { super(); Object.assign(this, { tag, attrs: {}, children: [], listeners: {}, hidden: false,
    className: "", disabled: false, open: false, returnValue: "" }); this._value = undefined; }
  get value() { return this._value ?? this.attrs.value ?? ""; }
  set value(v) { this._value = v; }
  get checked() { return "checked" in this.attrs; }
  setAttribute(k, v) { this.attrs[k] = String(v); }
  addEventListener(ev, fn) { (this.listeners[ev] ||= []).push(fn); }
  append(...cs) { for (const c of cs) this.children.push(c instanceof Node ? c : new Text(c)); }
  replaceChildren(...cs) { this.children = []; this.append(...cs);
    if (this.tag === "select" && cs.length && this._value === undefined) this._value = cs[0].attrs.value; }
  set textContent(t) { this.children = [new Text(t)]; }
  get textContent() { return this.children.map((c) => c.textContent).join(""); }
  showModal() { this.open = true; }
  scrollIntoView() {}
  click() { for (const fn of this.listeners.click || []) fn({ preventDefault() {} }); }
  find(pred) { for (const c of this.children) { if (!(c instanceof El)) continue;
    if (pred(c)) return c; const f = c.find(pred); if (f) return f; } return null; }
  all(pred, out = []) { for (const c of this.children) { if (!(c instanceof El)) continue;
    if (pred(c)) out.push(c); c.all(pred, out); } return out; }
}
const nodes = {};
const initial = { "#f-status": "live", "#f-kind": "predictive", "#f-tier": "", "#a-span": "24" };
const document = {
  querySelector(sel) { if (!nodes[sel]) { const tag = sel === "#a-sensor" ? "select" : "div";
    nodes[sel] = new El(tag); if (sel in initial) nodes[sel]._value = initial[sel]; } return nodes[sel]; },
  createElement: (t) => new El(t), createElementNS: (ns, t) => new El(t),
  createTextNode: (t) => new Text(t),
};
const store = { "prognos.token": TOKEN };
const ctx = { document, Node, console, Date, URLSearchParams, JSON, Math, Number, Object, Array,
  Promise, String, Error, encodeURIComponent,
  localStorage: { getItem: (k) => store[k] ?? null, setItem: (k, v) => { store[k] = v; }, removeItem: (k) => { delete store[k]; } },
  fetch: (url, opts) => fetch(BASE + url, opts), prompt: () => "test", setInterval: () => 0 };
vm.createContext(ctx);
vm.runInContext(fs.readFileSync(process.env.SCRIPT, "utf8"), ctx);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(pred, ms = 20000) {  // poll the fake DOM until the page has rendered
  for (const end = Date.now() + ms; Date.now() < end; await sleep(25)) if (pred()) return;
}
(async () => {
  const $ = (s) => document.querySelector(s);
  await until(() => $("#q-count").textContent && $("#kpis").children.length && $("#error").textContent === "" || $("#error").textContent);
  const out = { error: $("#error").textContent, whoami: $("#whoami").textContent };
  const rows = $("#queue tbody").all((e) => e.tag === "tr");
  out.queueRows = rows.length;
  out.queueCells = rows.length ? rows[0].all((e) => e.tag === "td").length : 0;
  out.queueCount = $("#q-count").textContent;
  out.kpis = $("#kpis").all((e) => e.className === "card").length;
  out.slaRows = $("#sla tbody").all((e) => e.tag === "tr").length;
  out.uptimeRows = $("#uptime tbody").all((e) => e.tag === "tr").length;
  out.assetRows = $("#assets tbody").all((e) => e.tag === "tr").length;
  // drill into the first asset of the queue
  rows[0].find((e) => e.tag === "a").click();
  await until(() => $("#a-res").textContent || $("#error").textContent);
  out.assetTitle = $("#a-title").textContent;
  out.assetHidden = $("#asset").hidden;
  out.modes = $("#a-modes tbody").all((e) => e.tag === "tr").length;
  out.chartLine = !!$("#chart").find((e) => e.tag === "polyline");
  out.chartPoints = $("#a-res").textContent;
  // schedule the first order through the dialog
  const btn = rows[0].find((e) => e.tag === "button" && e.textContent === "Schedule");
  out.scheduleButton = !!btn;
  if (btn) {
    btn.click();
    const dlg = $("#dlg");
    out.dialogOpen = dlg.open;
    const [when, who] = $("#dlg-body").all((e) => e.tag === "input");
    when.value = "2030-01-02T09:30"; who.value = "tech-js";
    dlg.returnValue = "ok"; dlg.onclose();
    await until(() => rows[0] !== $("#queue tbody").find((e) => e.tag === "tr") || $("#error").textContent);
  }
  out.errorAfter = $("#error").textContent;
  console.log(JSON.stringify(out));
})().catch((e) => { console.log(JSON.stringify({ crash: String(e && e.stack || e) })); });
"""


@pytest.fixture(scope="module")
def server(settings):
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                        log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if httpx.get(base + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    yield base
    srv.should_exit = True
    thread.join(10)


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_planner_page_script_renders_and_schedules(server, db, uid, tmp_path: Path):
    now = datetime.now(timezone.utc)
    m, c = f"JM-{uid}", f"JC-{uid}"
    seed.add_model(db, m)
    seed.add_customer(db, c, [f"{c}-S"])
    asset = f"JA-{uid}"
    seed.add_asset(db, asset, m, c, f"{c}-S", tier="platinum", device_id=f"jd-{uid}")
    seed.add_health(db, asset, "bearing_wear", health=0.2, risk=0.95, rul_h=30)
    with db.cursor() as cur, cur.copy("COPY telemetry (time, device_id, vals) FROM STDIN") as cp:
        for k in range(120):
            cp.write_row((now - timedelta(minutes=120 - k), f"jd-{uid}", [1.0 + k / 100, 60.0, 40.0, 6.0]))
    # priority 1 and the earliest respond-by: first in the queue whatever else the database holds
    order = seed.add_order(db, asset, "bearing_wear", priority=1, sla_tier="platinum", risk=0.95,
                           opened_at=now - timedelta(days=4000), respond_by=now - timedelta(days=3999),
                           predicted_mttr_h=5.5, predicted_failure_at=now + timedelta(hours=30))
    token = create_token(db, f"page-{uid}", "planner")
    harness = tmp_path / "harness.js"
    harness.write_text(HARNESS)
    proc = subprocess.run(
        [NODE, str(harness)], capture_output=True, text=True, timeout=60,
        env={"BASE": server, "TOKEN": token, "SCRIPT": str(STATIC / "app.js"), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "crash" not in out, out.get("crash")
    assert out["error"] == "" and out["errorAfter"] == "", out
    assert out["whoami"] == f"page-{uid} · planner"
    assert out["queueRows"] >= 1 and out["queueCells"] == 12 and "orders" in out["queueCount"]
    assert out["kpis"] == 5 and out["slaRows"] >= 1 and out["uptimeRows"] >= 1 and out["assetRows"] >= 1
    assert out["assetTitle"].startswith(asset) and out["assetHidden"] is False
    assert out["modes"] == len(seed.MODES)
    assert out["chartLine"] and "points" in out["chartPoints"]
    assert out["scheduleButton"] and out["dialogOpen"]
    row = db.execute("SELECT status, detail FROM service_orders WHERE order_id = %s", (order,)).fetchone()
    assert row[0] == "scheduled" and row[1]["assignee"] == "tech-js"
