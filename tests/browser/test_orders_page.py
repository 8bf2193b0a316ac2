"""The planner page's triage and SLA panel (service_api/static/orders.js) in Chromium: a planner
approves one proposal and rejects another as a false alarm through the dialog, reads an order's
history and clocks, sees the SLA risk list and an open fleet incident; a viewer gets none of the
actions."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone

import psycopg
import pytest
from playwright.sync_api import expect

from orders import state
from tests import seed
from tests.browser.test_planner_page import login, row, status_of


@pytest.fixture
def proposals(settings_page):
    """Two proposed predictive orders (bronze: triage leaves them to a planner), first in the
    queue whatever else the database holds."""
    uid = secrets.token_hex(3)
    now = datetime.now(timezone.utc)
    with psycopg.connect(settings_page.dsn, autocommit=True) as conn:
        m, c = f"OP-M{uid}", f"OP-C{uid}"
        seed.add_model(conn, m)
        seed.add_customer(conn, c, [f"{c}-S"])
        ids = []
        for i in range(2):
            a = f"OP-A{i}-{uid}"
            seed.add_asset(conn, a, m, c, f"{c}-S", tier="bronze")
            at = now - timedelta(hours=2 - i)
            [oid] = state.open_or_update(conn, [state.OrderProposal(
                asset_id=a, mode="bearing_wear", kind="predictive", opened_at=at, priority=1, sla_tier="bronze",
                risk=0.97, predicted_failure_at=now + timedelta(hours=30), predicted_mttr_h=6.0,
                respond_by=now - timedelta(days=3000 - i))])
            ids.append(oid)
    return ids


def test_planner_approves_and_rejects_proposals(page, page_data, settings_page, proposals):
    keep, drop = proposals
    login(page, page_data["tokens"]["planner"])
    expect(row(page, keep).locator("td:nth-child(10)")).to_have_text("proposed")
    row(page, keep).get_by_role("button", name="Approve").click()
    expect(row(page, keep).locator("td:nth-child(10)")).to_have_text("approved")
    assert status_of(settings_page, keep) == "approved"

    row(page, drop).get_by_role("button", name="Reject").click()
    dlg = page.locator("#dlg")
    expect(dlg).to_be_visible()
    dlg.locator("select").select_option("false_alarm")
    dlg.locator("textarea").fill("sensor bracket loose")
    page.click("#dlg-ok")
    expect(row(page, drop)).to_have_count(0)          # rejected: no longer live
    with psycopg.connect(settings_page.dsn) as conn:
        assert conn.execute("SELECT status, reason FROM service_orders WHERE order_id = %s",
                            (drop,)).fetchone() == ("rejected", "false_alarm")

    # the approved order's history and clocks
    row(page, keep).get_by_role("button", name="History").click()
    expect(dlg).to_be_visible()
    expect(dlg.locator("table.history tbody tr")).to_have_count(3)   # opened, triage left it, approved
    expect(dlg).to_contain_text("Breach probability")
    page.locator("#dlg button[value=cancel]").click()
    # the SLA risk list shows live orders with their probability
    expect(page.locator("#o-risk tbody tr").first).to_be_visible()
    expect(page.locator("#o-precision tbody tr").first).to_be_visible()


def test_viewer_sees_the_panel_without_actions(page, page_data, proposals):
    login(page, page_data["tokens"]["viewer"])
    r = row(page, proposals[0])
    expect(r).to_be_visible()
    expect(r.get_by_role("button").filter(has_not_text="History")).to_have_count(0)
    expect(r.get_by_role("button", name="History")).to_have_count(1)
    expect(page.locator("#o-risk tbody tr").first).to_be_visible()
