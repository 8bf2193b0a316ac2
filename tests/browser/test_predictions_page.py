"""Predictions on the planner page (predictions.js) in Chromium against the live API: the work
queue shows an order's predicted failure with its 10th-90th percentile interval; the asset
view shows per failure mode the probability of failure within the horizon and the predicted
failure interval, the anomalous sensors since the last repair, and the anomalies marked on
the telemetry chart."""

from __future__ import annotations

from datetime import timedelta

import psycopg
from playwright.sync_api import expect

from tests.browser.test_planner_page import login, row


def test_predicted_failure_interval_and_evidence_are_shown(page, page_data, settings_page):
    now = page_data["now"]
    order_id = page_data["orders"]["to_schedule"]
    with psycopg.connect(settings_page.dsn, autocommit=True) as conn:
        asset = conn.execute("SELECT asset_id FROM service_orders WHERE order_id = %s", (order_id,)).fetchone()[0]
        conn.execute("""UPDATE asset_health SET rul_h = 72, rul_lo_h = 30, rul_hi_h = 160, p_fail = 0.83,
                            horizon_h = 336, predicted_at = %s WHERE asset_id = %s AND mode = 'bearing_wear'""",
                     (now, asset))
        conn.execute("UPDATE service_orders SET predicted_failure_at = %s, predicted_failure_lo = %s, "
                     "predicted_failure_hi = %s WHERE order_id = %s",
                     (now + timedelta(hours=72), now + timedelta(hours=30), now + timedelta(hours=160), order_id))
        for minutes in (150, 90):                      # within the charted telemetry, after the last repair
            conn.execute("INSERT INTO anomalies (time, asset_id, sensor, detector, score, detail) "
                         "VALUES (%s, %s, 'vibration_rms', 'fused', 0.7, '{\"z\": 6.1}') ON CONFLICT DO NOTHING",
                         (now - timedelta(minutes=minutes), asset))
    login(page, page_data["tokens"]["viewer"])
    r = row(page, order_id)
    expect(r.locator("td.pred small.interval")).to_contain_text(" – ")
    r.locator("a.asset").click()
    expect(page.locator("#a-pred tbody tr")).not_to_have_count(0)
    bearing = page.locator("#a-pred tbody tr", has_text="bearing_wear")
    expect(bearing).to_contain_text("83 %")
    expect(bearing).to_contain_text(" – ")
    expect(page.locator("#a-evidence")).to_contain_text("Anomalous since")
    expect(page.locator("#a-evidence")).to_contain_text("vibration_rms (2×")
    expect(page.locator("#a-order-rule")).to_contain_text("from detection's evidence")    # no order rule learned
    expect(page.locator("#chart svg line.anom-here")).to_have_count(2)
    page.select_option("#a-sensor", "bearing_temp")          # other sensors' anomalies: ticks
    expect(page.locator("#chart svg line.anom-other")).to_have_count(2)
