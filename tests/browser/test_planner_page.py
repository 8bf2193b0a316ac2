"""The planner page in Chromium against the live API: log in with a token, the work queue and
its filters and pages, every action of a planner (approve, reject, schedule, hold, resume,
cancel, history) and a technician (start, complete), what a viewer and a customer see, the asset drill-down with its telemetry chart;
no console error, failed request or unexpected HTTP error anywhere (the ``page`` fixture)."""

from __future__ import annotations

import re
import time

import psycopg
import pytest
from playwright.sync_api import Page, expect


def login(page: Page, token: str) -> None:
    page.goto("/")
    page.fill("#token", token)
    page.click("#login button[type=submit]")
    expect(page.locator("#whoami")).not_to_be_empty()
    expect(page.locator("#q-count")).to_have_text(re.compile(r"^\d+ orders$"))
    # the fleet standing loads alongside; once its cards are in, the layout no longer shifts
    # (a click aimed while it shifts could land on another element)
    expect(page.locator("#kpis .card")).to_have_count(5)
    expect(page.locator("#assets tbody tr").first).to_be_visible()


def row(page: Page, order_id: int):
    return page.locator("#queue tbody tr", has=page.locator("td:first-child", has_text=re.compile(
        rf"^{order_id}$")))


def column(page: Page, index: int) -> list[str]:
    """Text of one column of the work queue (0-based)."""
    return page.locator(f"#queue tbody tr td:nth-child({index + 1})").all_inner_texts()


def column_becomes(page: Page, index: int, allowed: set[str], timeout: float = 10.0) -> list[str]:
    """Wait until the queue is non-empty and every cell of the column is in ``allowed`` (the
    queue reloads asynchronously after a filter changes); return the column."""
    end = time.monotonic() + timeout
    while True:
        cells = column(page, index)
        if cells and set(cells) <= allowed:
            return cells
        if time.monotonic() > end:
            raise AssertionError(f"column {index} is {sorted(set(cells))}, not within {allowed}")
        page.wait_for_timeout(100)


def status_of(settings_page, order_id: int) -> str:
    with psycopg.connect(settings_page.dsn) as conn:
        return conn.execute("SELECT status FROM service_orders WHERE order_id = %s",
                            (order_id,)).fetchone()[0]


def test_page_asks_for_a_token_then_logs_in(page, page_data):
    page.goto("/")
    expect(page.locator("#error")).to_contain_text("Enter an API token")
    login(page, page_data["tokens"]["planner"])
    expect(page.locator("#whoami")).to_have_text("bp-planner · planner")
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#kpis .card")).to_have_count(5)
    expect(page.locator("#sla tbody tr").first).to_be_visible()
    expect(page.locator("#uptime tbody tr", has_text="BP-M")).to_be_visible()
    # the token is remembered: a reload stays logged in
    page.reload()
    expect(page.locator("#whoami")).to_have_text("bp-planner · planner")
    page.click("#logout")
    expect(page.locator("#whoami")).to_be_empty()
    expect(page.locator("#error")).to_contain_text("Enter an API token")


def test_a_wrong_token_is_refused_with_a_message(page, browser_log):
    browser_log.allow(r"(HTTP 401|status of 401)")
    page.goto("/")
    page.fill("#token", "prg_not-a-real-token")
    page.click("#login button[type=submit]")
    expect(page.locator("#error")).to_have_text(re.compile("not valid"))
    expect(page.locator("#whoami")).to_be_empty()


def test_queue_filters_and_pages(page, page_data):
    login(page, page_data["tokens"]["viewer"])
    # default: live predictive orders, most urgent first
    assert set(column(page, 9)) <= {"proposed", "approved", "scheduled", "in progress", "on hold"}
    prios = [int(p) for p in column(page, 1)]
    assert prios == sorted(prios)
    expect(page.locator("#queue tbody tr")).to_have_count(25)
    total = int(page.locator("#q-count").inner_text().split()[0])
    assert total > 25
    page.click("#next")
    expect(page.locator("#page")).to_have_text(re.compile(rf"^26–{min(50, total)} of {total}$"))
    page.click("#prev")
    expect(page.locator("#page")).to_have_text(re.compile(rf"^1–25 of {total}$"))

    page.select_option("#f-status", "completed")
    column_becomes(page, 9, {"completed"})

    page.select_option("#f-status", "live")
    page.select_option("#f-kind", "preventive")
    expect(row(page, page_data["orders"]["preventive"])).to_be_visible()
    expect(row(page, page_data["orders"]["corrective"])).to_have_count(0)
    page.select_option("#f-kind", "")
    expect(row(page, page_data["orders"]["corrective"])).to_be_visible()
    page.select_option("#f-tier", "gold")
    column_becomes(page, 8, {"gold"})
    page.select_option("#f-tier", "platinum")
    column_becomes(page, 8, {"platinum"})


def test_viewer_has_no_actions(page, page_data):
    login(page, page_data["tokens"]["viewer"])
    expect(page.locator("#queue tbody tr").first).to_be_visible()
    # reading an order's history is all it may do
    expect(page.locator("#queue tbody button").filter(
        has_not_text=re.compile("history", re.I))).to_have_count(0)


def test_planner_schedules_an_order(page, page_data, settings_page):
    oid = page_data["orders"]["to_schedule"]
    login(page, page_data["tokens"]["planner"])
    r = row(page, oid)
    expect(r.get_by_role("button", name="Start")).to_have_count(0)  # not a planner's action
    r.get_by_role("button", name="Schedule").click()
    dlg = page.locator("#dlg")
    expect(dlg).to_be_visible()
    dlg.locator("input[type=datetime-local]").fill("2031-05-06T09:30")
    dlg.locator("input[type=text]").fill("Kim (technician)")
    dlg.locator("input[type=number]").fill("2")
    dlg.locator("textarea").fill("customer asked for a morning visit")
    page.click("#dlg-ok")
    expect(dlg).to_be_hidden()
    expect(r.locator("td:nth-child(10)")).to_have_text("scheduled")
    expect(r.locator("td:nth-child(11)")).to_contain_text("Kim (technician)")
    expect(r.locator("td:nth-child(2)")).to_have_text("2")
    assert status_of(settings_page, oid) == "scheduled"


def test_planner_approves_and_rejects_proposed_orders(page, page_data, settings_page):
    approve, reject = page_data["orders"]["to_approve"], page_data["orders"]["to_reject"]
    login(page, page_data["tokens"]["planner"])
    expect(row(page, approve).locator("td:nth-child(10)")).to_have_text("proposed")
    row(page, approve).get_by_role("button", name="Approve").click()
    expect(row(page, approve).locator("td:nth-child(10)")).to_have_text("approved")
    expect(row(page, approve).get_by_role("button", name="Schedule")).to_be_visible()
    assert status_of(settings_page, approve) == "approved"

    row(page, reject).get_by_role("button", name="Reject").click()
    dlg = page.locator("#dlg")
    expect(dlg).to_contain_text(f"Reject order {reject}")
    dlg.locator("select").select_option("false_alarm")
    dlg.locator("textarea").fill("vibration from a neighbouring machine")
    page.click("#dlg-ok")
    expect(row(page, reject)).to_have_count(0)  # no longer live
    assert status_of(settings_page, reject) == "rejected"
    with psycopg.connect(settings_page.dsn) as conn:
        reason = conn.execute("SELECT reason FROM service_order_history WHERE order_id = %s "
                              "ORDER BY id DESC LIMIT 1", (reject,)).fetchone()[0]
    assert reason == "false_alarm"


def test_planner_holds_resumes_and_reads_the_history(page, page_data, settings_page):
    oid = page_data["orders"]["to_hold"]
    login(page, page_data["tokens"]["planner"])
    row(page, oid).get_by_role("button", name="Hold").click()
    dlg = page.locator("#dlg")
    dlg.locator("select").select_option("waiting_parts")
    dlg.locator("textarea").fill("impeller on back order")
    page.click("#dlg-ok")
    expect(row(page, oid).locator("td:nth-child(10)")).to_have_text("on hold")
    assert status_of(settings_page, oid) == "on_hold"
    row(page, oid).get_by_role("button", name="Resume").click()
    expect(row(page, oid).locator("td:nth-child(10)")).to_have_text("approved")

    row(page, oid).get_by_text(re.compile(r"^history$", re.I)).click()  # a link or a button
    expect(dlg).to_contain_text(f"Order {oid}")
    history = dlg.locator("table.history tbody tr")
    expect(history).to_have_count(3)  # opened, held, resumed
    expect(history.nth(1)).to_contain_text("waiting_parts")
    expect(history.nth(1)).to_contain_text("impeller on back order")
    page.locator("#dlg button[value=cancel]").click()
    expect(dlg).to_be_hidden()


def test_planner_cancels_an_order_with_a_reason(page, page_data, settings_page):
    oid = page_data["orders"]["to_cancel"]
    login(page, page_data["tokens"]["planner"])
    page.once("dialog", lambda d: d.accept("duplicate of a customer call"))
    row(page, oid).get_by_role("button", name="Cancel").click()
    expect(row(page, oid)).to_have_count(0)  # no longer live
    assert status_of(settings_page, oid) == "cancelled"
    with psycopg.connect(settings_page.dsn) as conn:
        note = conn.execute("SELECT note FROM service_order_history WHERE order_id = %s "
                            "ORDER BY id DESC LIMIT 1", (oid,)).fetchone()[0]
    assert "duplicate of a customer call" in note


def test_technician_starts_and_completes_orders(page, page_data, settings_page):
    start, complete = page_data["orders"]["to_start"], page_data["orders"]["to_complete"]
    login(page, page_data["tokens"]["technician"])
    expect(page.locator("#queue tbody button", has_text="Schedule")).to_have_count(0)
    row(page, start).get_by_role("button", name="Start").click()
    expect(row(page, start).locator("td:nth-child(10)")).to_have_text("in progress")
    assert status_of(settings_page, start) == "in_progress"

    row(page, complete).get_by_role("button", name="Complete").click()
    dlg = page.locator("#dlg")
    expect(dlg).to_contain_text(f"Complete order {complete}")
    dlg.locator("input[type=checkbox]").uncheck()
    dlg.locator("textarea").fill("seal replaced; second visit needed for the bearing")
    grades = dlg.locator("fieldset.as-found select")
    expect(grades).to_have_count(3)                 # one per failure mode of the asset's model
    first_mode = grades.first.get_attribute("name").removeprefix("as-found-")
    grades.first.select_option("worn")              # the others left "not inspected"
    page.click("#dlg-ok")
    expect(row(page, complete)).to_have_count(0)
    assert status_of(settings_page, complete) == "completed"
    with psycopg.connect(settings_page.dsn) as conn:
        ftf, found = conn.execute("SELECT first_time_fix, detail->'as_found' FROM repairs WHERE order_id = %s",
                                  (complete,)).fetchone()
    assert ftf is False
    assert found == {first_mode: "worn"}


def test_asset_drill_down_with_telemetry_chart(page, page_data):
    login(page, page_data["tokens"]["viewer"])
    row(page, page_data["orders"]["to_schedule"]).locator("a.asset").click()
    section = page.locator("#asset")
    expect(section).to_be_visible()
    expect(page.locator("#a-title")).to_have_text("BP-A00 · Pump BP-M")
    expect(page.locator("#a-meta")).to_contain_text("device bp-d00")
    expect(page.locator("#a-modes tbody tr")).to_have_count(3)
    expect(page.locator("#a-orders tbody tr").first).to_be_visible()
    line = page.locator("#chart svg polyline.line")
    expect(line).to_have_count(1)
    points = line.get_attribute("points").split()
    assert len(points) > 100  # six hours of minute buckets, within the 24 h window
    expect(page.locator("#a-res")).to_contain_text("1m")
    page.select_option("#a-sensor", "bearing_temp")
    expect(page.locator("#a-res")).to_contain_text("degC")
    page.select_option("#a-span", "6")
    expect(page.locator("#chart svg polyline.line")).to_have_count(1)
    page.click("#a-close")
    expect(section).to_be_hidden()


def test_asset_without_device_says_no_telemetry(page, page_data):
    login(page, page_data["tokens"]["viewer"])
    page.select_option("#f-kind", "preventive")
    row(page, page_data["orders"]["preventive"]).locator("a.asset").click()
    expect(page.locator("#a-title")).to_contain_text("BP-A04")
    expect(page.locator("#chart")).to_have_text("no telemetry")


def test_customer_sees_only_its_own_orders(page, page_data):
    login(page, page_data["tokens"]["customer"])
    expect(page.locator("#whoami")).to_have_text("bp-customer · customer")
    assets = set(column(page, 2))
    assert assets and all(int(a[-2:]) % 2 == 0 for a in assets)  # BP-C1 has the even assets
    # reading an order's history is all it may do
    expect(page.locator("#queue tbody button").filter(
        has_not_text=re.compile("history", re.I))).to_have_count(0)
    expect(page.locator("#board")).to_be_hidden()     # the fleet's schedule is not a customer's


@pytest.mark.parametrize("path,ready", [
    ("/api/v1/docs", "#swagger-ui .information-container"),
    ("/api/v1/redoc", "redoc, [role=navigation], .api-content"),
])
def test_api_docs_render_offline(page, path, ready, live_api):
    # Offline: any request that leaves the API server is refused (and logged as a failure).
    page.route(re.compile(r"^(?!" + re.escape(live_api) + ").*"), lambda route: route.abort())
    page.goto(path)
    expect(page.locator(ready).first).to_be_visible(timeout=20_000)
    expect(page.get_by_text("Prognos service API").first).to_be_visible()
    if path.endswith("/docs"):
        expect(page.locator(".opblock-tag", has_text="service orders").first).to_be_visible()
        expect(page.locator(".btn.authorize")).to_be_visible()
    else:
        expect(page.get_by_text("service orders").first).to_be_visible()
