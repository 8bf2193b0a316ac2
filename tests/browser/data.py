"""The installed base the browser tests see: 12 assets of one model at two customers, live
orders in every status (enough predictive ones to page), finished ones, six hours of minute
telemetry on one device (rolled up as ingest does), downtime and repairs, and a token per role.
Ids start with ``BP-`` so they never collide with other tests' rows in the session database."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import psycopg

from ingest.rollup import refresh_rollups
from tests import seed
from service_api.auth import create_token

MODEL = "BP-M"
CUSTOMERS = ("BP-C1", "BP-C2")
ASSETS = [f"BP-A{i:02d}" for i in range(12)]
TIERS = ("platinum", "gold", "silver", "bronze")
DEVICE = "bp-d00"


def seed_page_data(conn: psycopg.Connection) -> dict:
    now = datetime.now(timezone.utc).replace(microsecond=0)
    seed.add_model(conn, MODEL)
    for c in CUSTOMERS:
        seed.add_customer(conn, c, [f"{c}-S"])
    for i, a in enumerate(ASSETS):
        c = CUSTOMERS[i % 2]
        seed.add_asset(conn, a, MODEL, c, f"{c}-S", tier=TIERS[i % 4],
                       device_id=DEVICE if i == 0 else None)
        for j, (mode, *_rest) in enumerate(seed.MODES):
            h = 0.2 + 0.06 * i + 0.1 * j
            seed.add_health(conn, a, mode, health=min(h, 1.0), risk=max(0.0, 1 - h), rul_h=100 * h)
        seed.add_downtime(conn, a, now - timedelta(days=5, hours=i), now - timedelta(days=5))
        seed.add_repair(conn, a, "bearing_wear", now - timedelta(days=5, hours=1),
                        now - timedelta(days=5))

    def order(asset, mode, status="approved", kind="predictive", priority=3, hours_ago=10.0, **kw):
        opened = now - timedelta(hours=hours_ago)
        hist = kw.pop("history", [])
        return seed.add_order(conn, asset, mode, kind=kind, status=status, priority=priority,
                              sla_tier=TIERS[ASSETS.index(asset) % 4], opened_at=opened,
                              respond_by=opened + timedelta(hours=24), risk=0.8,
                              predicted_failure_at=now + timedelta(days=3),
                              predicted_mttr_h=5.0, history=hist, **kw)

    ids = {
        # one order per action, most urgent first so that each is on the queue's first page
        "to_schedule": order("BP-A00", "bearing_wear", priority=1, hours_ago=30),
        "to_cancel": order("BP-A01", "bearing_wear", priority=1, hours_ago=29),
        "to_start": order("BP-A02", "bearing_wear", status="scheduled", priority=1, hours_ago=28,
                          history=[(now - timedelta(hours=20), "scheduled")]),
        "to_complete": order("BP-A03", "bearing_wear", status="in_progress", priority=1,
                             hours_ago=27, history=[(now - timedelta(hours=20), "scheduled"),
                                                    (now - timedelta(hours=2), "in_progress")]),
        "to_approve": order("BP-A08", "bearing_wear", status="proposed", priority=1, hours_ago=26),
        "to_reject": order("BP-A09", "bearing_wear", status="proposed", priority=1, hours_ago=25),
        "to_hold": order("BP-A10", "bearing_wear", priority=1, hours_ago=24),
        "preventive": order("BP-A04", "bearing_wear", kind="preventive", priority=2),
        "corrective": order("BP-A05", "bearing_wear", kind="corrective", priority=2),
        "completed": order("BP-A06", "bearing_wear", status="completed", hours_ago=48,
                           closed_at=now - timedelta(hours=40), first_time_fix=True),
        "cancelled": order("BP-A07", "bearing_wear", status="cancelled", hours_ago=48,
                           closed_at=now - timedelta(hours=45)),
    }
    # enough live predictive orders to fill more than one page (25 rows)
    for a in ASSETS:
        for mode in ("seal_leak", "electrical"):
            order(a, mode, priority=4, hours_ago=5)

    start = now - timedelta(hours=6)
    with conn.cursor() as cur:
        with cur.copy("COPY telemetry (time, device_id, vals) FROM STDIN (FORMAT BINARY)") as cp:
            cp.set_types(["timestamptz", "text", "float4[]"])
            for k in range(6 * 60):
                x = k / 60.0
                cp.write_row((start + timedelta(minutes=k), DEVICE,
                              [2.0 + 0.1 * x, 60.0 + x, 40.0, 6.0]))
        cur.execute("""INSERT INTO rollup_dirty (bucket, worker)
                       SELECT generate_series(%s::timestamptz, %s, interval '1 minute'), 'bp'""",
                    (start, start + timedelta(minutes=6 * 60 - 1)))
    refresh_rollups(conn, settle_s=0)
    tokens = {role: create_token(conn, f"bp-{role}", role)
              for role in ("viewer", "planner", "technician", "admin")}
    tokens["customer"] = create_token(conn, "bp-customer", "customer", customer_id=CUSTOMERS[0])
    return {"orders": ids, "tokens": tokens, "now": now}
