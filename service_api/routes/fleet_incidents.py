"""Fleet incidents: one per product model whose fleet crossed risk all at once (storm guard,
``orders/triage.py``); a planner confirms (the proposals are approved) or dismisses it (they are
rejected as false alarms)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query
from psycopg.rows import dict_row

from orders import state, triage
from service_api.deps import CurrentUser, DbConn, requires
from service_api.models import FleetIncidentPublic, FleetIncidentResolve
from service_api.params import IdQuery

router = APIRouter(prefix="/fleet-incidents", tags=["service orders"])

SELECT = """
SELECT f.*, (SELECT count(*) FROM service_orders o WHERE o.fleet_incident_id = f.incident_id)::int AS orders
FROM fleet_incidents f
"""


@router.get("", response_model=list[FleetIncidentPublic])
def list_incidents(
    conn: DbConn,
    user: CurrentUser,
    status_: Annotated[str | None, Query(alias="status", pattern="^(open|confirmed|dismissed)$")] = None,
    model: IdQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    """Fleet incidents, newest first. Not shown to customer tokens (a fleet-wide matter)."""
    if user.customer_id is not None:
        return []
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(SELECT + "WHERE (%(s)s::text IS NULL OR f.status = %(s)s) AND (%(m)s::text IS NULL OR f.model_id = %(m)s) "
                    "ORDER BY f.opened_at DESC, f.incident_id DESC LIMIT %(l)s", {"s": status_, "m": model, "l": limit})
        return cur.fetchall()


@router.post("/{incident_id}/resolve", response_model=FleetIncidentPublic,
             dependencies=[requires("triage")])
def resolve(conn: DbConn, user: CurrentUser, incident_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
            body: FleetIncidentResolve):
    """Confirm or dismiss an open incident; its proposed orders are approved or rejected."""
    try:
        with conn.transaction():
            triage.resolve_incident(conn, incident_id, body.decision, actor=user.actor, note=body.note.strip())
    except state.OrderError as exc:
        code = 404 if isinstance(exc, state.NotFound) else 409 if isinstance(exc, state.Conflict) else 422
        raise HTTPException(code, str(exc)) from None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(SELECT + "WHERE f.incident_id = %s", (incident_id,))
        return cur.fetchone()
