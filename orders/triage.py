"""Triage of predictive proposals: approve automatically, leave for a planner, or group into a
fleet incident. Runs when detection opens a ``proposed`` order, on the order's clock (the
telemetry time it was opened at); every outcome is a history row through :mod:`orders.state`.

In this order:

1. **Storm guard.** If the product model has an open fleet incident, the order joins it. Else,
   if more than ``storm_share`` of the model's in-service fleet (and at least
   ``storm_min_assets`` assets) had predictive orders opened within ``storm_window_h`` up to now,
   one incident is raised and this order and the other still-proposed orders of the window join
   it. Orders in an incident stay ``proposed`` (reason ``storm``) until a planner confirms the
   incident (its orders are approved) or dismisses it (they are rejected as false alarms).
2. **Rule.** The tier's ``auto_approve_risk`` (``triage_settings.no_contract_auto_approve_risk``
   without a contract): NULL or a higher value than the order's risk leaves it for a planner
   (reason ``needs_review``).
3. **Rate limits.** At most ``customer_daily_limit`` / ``site_daily_limit`` automatic approvals
   per customer / site in the 24 hours up to now; the excess stays proposed (``rate_limited``).
4. Otherwise it is approved (actor ``triage``, reason ``auto_approved``).

The settings are the ``sla_tiers`` and ``triage_settings`` tables (migration 0021).
"""

from __future__ import annotations

from datetime import timedelta

from psycopg.rows import dict_row

from orders import state

ACTOR = "triage"


def settings(conn) -> dict:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM triage_settings")
        return cur.fetchone()


def triage(conn, order_id: int) -> str:
    """Decide a proposed order; returns the outcome's reason code."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT o.order_id, o.status, o.risk, o.mode, o.opened_at, o.sla_tier, a.model_id,
                      a.customer_id, a.site_id, t.auto_approve_risk
               FROM service_orders o JOIN assets a USING (asset_id)
               LEFT JOIN sla_tiers t ON t.tier = o.sla_tier
               WHERE o.order_id = %s""", (order_id,))
        o = cur.fetchone()
    if o is None or o["status"] != "proposed":
        return "none"
    cfg = settings(conn)
    at = o["opened_at"]
    incident = _storm(conn, o, cfg)
    if incident is not None:
        return "storm"
    threshold = o["auto_approve_risk"] if o["sla_tier"] else cfg["no_contract_auto_approve_risk"]
    if threshold is None or o["risk"] is None or o["risk"] < threshold:
        why = (f"tier {o['sla_tier'] or 'none'}: a planner decides" if threshold is None
               else f"risk {o['risk']} below {threshold} for tier {o['sla_tier'] or 'none'}")
        state.transition(conn, order_id, None, actor=ACTOR, reason="needs_review", note=why, at=at)
        return "needs_review"
    for scope, key, limit in (("customer", "customer_id", cfg["customer_daily_limit"]),
                              ("site", "site_id", cfg["site_daily_limit"])):
        if limit is None:
            continue
        n = conn.execute(
            f"""SELECT count(*) FROM service_order_history h
                JOIN service_orders o ON o.order_id = h.order_id JOIN assets a ON a.asset_id = o.asset_id
                WHERE h.reason = 'auto_approved' AND a.{key} = %s AND h.at > %s AND h.at <= %s""",
            (o[key], at - timedelta(hours=24), at)).fetchone()[0]
        if n >= limit:
            state.transition(conn, order_id, None, actor=ACTOR, reason="rate_limited", at=at,
                             note=f"{scope} {o[key]}: {n} automatic approvals in 24 h (limit {limit})")
            return "rate_limited"
    state.transition(conn, order_id, "approved", actor=ACTOR, reason="auto_approved", at=at,
                     note=f"risk {o['risk']} >= {threshold} for tier {o['sla_tier'] or 'none'}")
    return "auto_approved"


def _storm(conn, o: dict, cfg: dict) -> int | None:
    """The fleet incident the order joins, raising one if the model's fleet storms; else None."""
    at = o["opened_at"]
    row = conn.execute("SELECT incident_id FROM fleet_incidents WHERE model_id = %s AND status = 'open'",
                       (o["model_id"],)).fetchone()
    if row is not None:
        _join(conn, row[0], [o["order_id"]], at)
        return row[0]
    since = at - timedelta(hours=float(cfg["storm_window_h"]))
    crossed, fleet = conn.execute(
        """SELECT (SELECT count(DISTINCT o.asset_id) FROM service_orders o JOIN assets a USING (asset_id)
                   WHERE a.model_id = %(m)s AND o.kind = 'predictive' AND o.opened_at > %(since)s
                     AND o.opened_at <= %(at)s),
                  (SELECT count(*) FROM assets WHERE model_id = %(m)s AND lifecycle_stage = 'in_service')""",
        {"m": o["model_id"], "since": since, "at": at}).fetchone()
    if fleet == 0 or crossed < cfg["storm_min_assets"] or crossed / fleet <= cfg["storm_share"]:
        return None
    members = [r[0] for r in conn.execute(
        """SELECT o.order_id FROM service_orders o JOIN assets a USING (asset_id)
           WHERE a.model_id = %s AND o.kind = 'predictive' AND o.status = 'proposed'
             AND o.opened_at > %s AND o.opened_at <= %s ORDER BY o.order_id""",
        (o["model_id"], since, at)).fetchall()]
    modes = sorted({r[0] for r in conn.execute(
        "SELECT DISTINCT mode FROM service_orders WHERE order_id = ANY(%s)", (members,)).fetchall()})
    incident = conn.execute(
        """INSERT INTO fleet_incidents (model_id, opened_at, window_h, assets, fleet_size, modes)
           VALUES (%s, %s, %s, %s, %s, %s) RETURNING incident_id""",
        (o["model_id"], at, cfg["storm_window_h"], crossed, fleet, modes)).fetchone()[0]
    _join(conn, incident, members, at)
    return incident


def _join(conn, incident: int, order_ids: list[int], at) -> None:
    for oid in order_ids:
        state.transition(conn, oid, None, actor=ACTOR, reason="storm", at=at,
                         note=f"fleet incident {incident}", changes={"fleet_incident_id": incident})
    conn.execute(
        """UPDATE fleet_incidents f SET assets = greatest(f.assets, x.n), modes = x.modes
           FROM (SELECT count(DISTINCT asset_id)::int AS n, array_agg(DISTINCT mode ORDER BY mode) AS modes
                 FROM service_orders WHERE fleet_incident_id = %s) x
           WHERE f.incident_id = %s""", (incident, incident))


def resolve_incident(conn, incident_id: int, decision: str, *, actor: str, note: str = "", at=None) -> dict:
    """A planner confirms (``confirmed``: the proposals are real faults, approve them) or dismisses
    (``dismissed``: a data, firmware or supply problem, reject them as false alarms) an open
    incident. Returns the incident row."""
    if decision not in ("confirmed", "dismissed"):
        raise state.Invalid("decision is confirmed or dismissed")
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM fleet_incidents WHERE incident_id = %s FOR UPDATE", (incident_id,))
        inc = cur.fetchone()
        if inc is None:
            raise state.NotFound(f"no fleet incident {incident_id}")
        if inc["status"] != "open":
            raise state.Conflict(f"fleet incident {incident_id} is already {inc['status']}")
        cur.execute("SELECT order_id FROM service_orders WHERE fleet_incident_id = %s AND status = 'proposed' "
                    "ORDER BY order_id", (incident_id,))
        ids = [r["order_id"] for r in cur.fetchall()]
    for oid in ids:
        if decision == "confirmed":
            state.transition(conn, oid, "approved", actor=actor, reason="planner", at=at,
                             note=f"fleet incident {incident_id} confirmed. {note}".strip())
        else:
            state.transition(conn, oid, "rejected", actor=actor, reason="false_alarm", at=at,
                             note=f"fleet incident {incident_id} dismissed. {note}".strip())
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """UPDATE fleet_incidents SET status = %s, resolved_at = coalesce(%s, now()), resolved_by = %s,
                   note = %s WHERE incident_id = %s RETURNING *""",
            (decision, at, actor, note, incident_id))
        return cur.fetchone()
