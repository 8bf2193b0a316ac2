"""The technician board (board.js) in Chromium: a plan of a territory of its own shows each
technician's timeline, the order nobody can do under "Not planned" with its reason, the sites
plot; a planner pins a visit through the dialog and re-plans, and the pin holds."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import psycopg
import pytest
from playwright.sync_api import expect

from scheduling import technicians
from service_api.auth import create_token
from tests import seed
from tests.browser.test_planner_page import login


@pytest.fixture(scope="session")
def page_data(settings_page):
    """Tokens only: the board test brings its own territory (and does not depend on the page's
    installed base)."""
    with psycopg.connect(settings_page.dsn, autocommit=True) as conn:
        return {"tokens": {r: create_token(conn, f"bb-{r}", r) for r in ("planner", "viewer")}}


def test_board_shows_the_plan_and_pins_a_visit(page, page_data, settings_page, live_api):
    region = "bp-board"
    now = datetime.now(timezone.utc)
    with psycopg.connect(settings_page.dsn, autocommit=True) as conn:
        seed.add_model(conn, "BB-M")
        seed.add_customer(conn, "BB-C", ["BB-S0", "BB-S1", "BB-S2"])
        for k, s in enumerate(["BB-S0", "BB-S1", "BB-S2"]):
            conn.execute("UPDATE sites SET region = %s, lat = %s, lon = %s WHERE site_id = %s",
                         (region, 51 + 0.1 * k, 10 + 0.1 * k, s))
        orders = []
        for k in range(3):
            seed.add_asset(conn, f"BB-A{k}", "BB-M", "BB-C", f"BB-S{k}", tier="gold")
            orders.append(seed.add_order(conn, f"BB-A{k}", "seal_leak" if k < 2 else "electrical", kind="corrective",
                                         opened_at=now - timedelta(hours=1), respond_by=now + timedelta(days=5),
                                         predicted_mttr_h=1.0))
        for name in ("BB-T1", "BB-T2"):
            technicians.add(conn, name, f"Tech {name}", region, (51.05, 10.05), workdays=(1, 2, 3, 4, 5, 6, 7),
                            shift_start=time(0), shift_end=time(23, 59))
            technicians.set_skill(conn, name, "BB-M", "seal_leak", 2)
    login(page, page_data["tokens"]["planner"])
    r = page.request.post(f"{live_api}/api/v1/schedule/plan",
                          headers={"Authorization": f"Bearer {page_data['tokens']['planner']}"},
                          data={"regions": [region], "time_limit_s": 1})
    assert r.status == 201, r.text()
    page.click("#refresh")
    board = page.locator("#board")
    expect(board.locator(".board-timeline .visit")).to_have_count(2)
    expect(board.locator("#board-unscheduled tbody tr")).to_have_count(1)
    expect(board.locator("#board-unscheduled")).to_contain_text("no technician qualified")
    expect(board.locator(".board-sites circle")).to_have_count(2)
    # pin the first order's visit to BB-T2 through the dialog, then re-plan: the visit is BB-T2's
    board.locator(f'.visit[data-order="{orders[0]}"]').click()
    page.select_option("#dlg-body select", "BB-T2")
    page.fill("#dlg-body input", "")
    page.click("#dlg-ok")
    page.click("#board-replan")
    visit = board.locator(f'.visit[data-order="{orders[0]}"]')
    expect(visit).to_have_attribute("stroke", "#000")
    with psycopg.connect(settings_page.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT technician_id FROM plan_visits WHERE order_id = %s ORDER BY plan_id DESC LIMIT 1",
                           (orders[0],)).fetchone()
    assert row == ("BB-T2",)
