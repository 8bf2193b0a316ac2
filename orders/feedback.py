"""What planners' decisions tell detection: false alarms to re-baseline on, and the precision of
predictive orders per product model and failure mode.

- A **false alarm** is a predictive order rejected or cancelled with reason ``false_alarm``
  (:data:`orders.state.DECISION_REASONS`). Detection reads them in order with
  :func:`false_alarms` (``after_id`` = the last history id it has handled) and re-baselines
  that asset and mode. Nothing here silences the asset: if the evidence persists after
  re-baselining, detection may propose again; only a repair resets it.
- A **confirmed change of duty** (:mod:`orders.duty`) re-baselines every sensor of the asset.
  :func:`rebaselines` is detection's one reader of both: what to re-baseline, in order.
- **Precision** of a (model, mode) = confirmed / (confirmed + false alarms), where confirmed =
  predictive orders completed (the work was done) and false alarms as above, over orders
  opened in the window. Orders rejected or cancelled for other reasons (not needed, duplicate,
  customer declined, ...) and live ones are counted but not judged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import dict_row

from orders.duty import since as duty_changes_since


@dataclass(frozen=True)
class FalseAlarm:
    id: int                 # service_order_history id: pass the last one as after_id
    order_id: int
    asset_id: str
    mode: str
    at: datetime            # when the planner decided (the order's clock)
    opened_at: datetime     # when detection proposed it
    actor: str


def false_alarms(conn, after_id: int = 0, limit: int = 10_000) -> list[FalseAlarm]:
    """Predictive orders rejected or cancelled as false alarms after history id ``after_id``,
    oldest first."""
    rows = conn.execute(
        """SELECT h.id, h.order_id, o.asset_id, o.mode, h.at, o.opened_at, h.actor
           FROM service_order_history h JOIN service_orders o ON o.order_id = h.order_id
           WHERE h.id > %s AND h.reason = 'false_alarm' AND h.to_status IN ('rejected', 'cancelled')
             AND o.kind = 'predictive'
           ORDER BY h.id LIMIT %s""", (after_id, limit)).fetchall()
    return [FalseAlarm(*r) for r in rows]


@dataclass(frozen=True)
class Rebaseline:
    """An asset whose detectors learn a new normal: the sensors ``mode`` moves (None: every
    sensor of the asset, and every mode's evidence starts over)."""
    source: str             # "false_alarm" or "duty_change"
    id: int                 # position in its source: service_order_history id / duty_changes id
    asset_id: str
    mode: str | None
    at: datetime


def rebaselines(conn, after: dict[str, int]) -> list[Rebaseline]:
    """Planners' false alarms and confirmed changes of duty recorded after the positions
    ``after`` (``{"false_alarm": history id, "duty_change": duty_changes id}``, missing = 0),
    in the order they happened."""
    out = [Rebaseline("false_alarm", f.id, f.asset_id, f.mode, f.at)
           for f in false_alarms(conn, after.get("false_alarm", 0))]
    out += [Rebaseline("duty_change", d.id, d.asset_id, None, d.at) for d in duty_changes_since(conn, after.get("duty_change", 0))]
    return sorted(out, key=lambda r: (r.at, r.source, r.id))


PRECISION_SQL = """
SELECT a.model_id, o.mode,
       count(*)::int AS orders,
       count(*) FILTER (WHERE o.status = 'completed')::int AS confirmed,
       count(*) FILTER (WHERE o.status IN ('rejected', 'cancelled') AND o.reason = 'false_alarm')::int
           AS false_alarms,
       count(*) FILTER (WHERE o.status IN ('rejected', 'cancelled') AND o.reason IS DISTINCT FROM 'false_alarm')::int
           AS dismissed_other,
       count(*) FILTER (WHERE o.status IN (SELECT status FROM order_statuses WHERE live))::int AS live
FROM service_orders o JOIN assets a ON a.asset_id = o.asset_id
WHERE o.kind = 'predictive' AND o.opened_at >= %(from)s AND o.opened_at < %(to)s
  AND (%(model)s::text IS NULL OR a.model_id = %(model)s)
  AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
GROUP BY a.model_id, o.mode
ORDER BY a.model_id, o.mode
"""


def precision(conn, start: datetime, end: datetime, model: str | None = None,
              customer: str | None = None) -> list[dict]:
    """Per (model, mode): orders, confirmed, false_alarms, dismissed_other, live and precision
    (None while nothing is judged) of predictive orders opened in [start, end)."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(PRECISION_SQL, {"from": start, "to": end, "model": model, "customer": customer})
        rows = cur.fetchall()
    for r in rows:
        judged = r["confirmed"] + r["false_alarms"]
        r["precision"] = r["confirmed"] / judged if judged else None
    return rows
