"""CSV exports for other systems (ERP, BI, spreadsheets): service orders, availability and SLA
standing, streamed (UTF-8, header row, RFC 4180 quoting, times in RFC 3339 UTC).

- ``/export/orders.csv``: every order opened in [from, to) (default: the last 365 days), read
  with a server-side cursor, so a large export does not sit in memory;
- ``/export/uptime.csv``: the rows of ``/uptime`` (same definitions), plus the fleet row;
- ``/export/sla.csv``: the rows of ``/sla`` per tier and per customer.

A customer token exports only its own customer's rows.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from psycopg.rows import dict_row

from service_api.deps import CurrentUser, DbConn, scope
from service_api.models import OrderKind, OrderStatus
from service_api.params import IdQuery, TimeQuery, resolve_window
from service_api.routes import sla as sla_route
from service_api.routes import uptime as uptime_route
from service_api.routes.service_orders import ORDER_SELECT, order_public

router = APIRouter(prefix="/export", tags=["export"])
CSV = {200: {"content": {"text/csv": {"schema": {"type": "string"}}},
             "description": "CSV with a header row"}}
ROWS_PER_CHUNK = 500

ORDER_COLUMNS = ["order_id", "asset_id", "model_id", "site_id", "customer_id", "mode", "kind",
                 "status", "priority", "sla_tier", "risk", "predicted_failure_at",
                 "predicted_mttr_h", "respond_by", "opened_at", "closed_at", "first_time_fix",
                 "scheduled_for", "assignee"]


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime):
        return v.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
    return str(v)


def csv_chunks(columns: list[str], rows: Iterable[dict]) -> Iterator[bytes]:
    """``rows`` as CSV, ``ROWS_PER_CHUNK`` rows per chunk.

    >>> b"".join(csv_chunks(["a", "b"], [{"a": 1, "b": "x,y"}, {"a": None, "b": ""}])).split()
    [b'a,b', b'1,"x,y"', b',']
    """
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(columns)
    for i, row in enumerate(rows, 1):
        w.writerow([_cell(row.get(c)) for c in columns])
        if i % ROWS_PER_CHUNK == 0:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def _csv(name: str, chunks: Iterator[bytes]) -> StreamingResponse:
    return StreamingResponse(chunks, media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/orders.csv", responses=CSV, response_class=StreamingResponse)
def export_orders(
    request: Request,
    user: CurrentUser,
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
    status_: Annotated[list[OrderStatus] | None, Query(alias="status")] = None,
    kind: Annotated[list[OrderKind] | None, Query()] = None,
    customer: IdQuery = None,
):
    """Service orders opened in [from, to) (default the last 365 days), oldest first."""
    start, end = resolve_window(from_, to, timedelta(days=365), datetime.now(timezone.utc))
    params = {"from": start, "to": end, "status": status_, "kind": kind,
              "customer": scope(user, customer)}
    pool = request.app.state.pool

    def rows() -> Iterator[dict]:
        with pool.connection() as conn, conn.transaction():
            with conn.cursor(name="export_orders", row_factory=dict_row) as cur:
                cur.itersize = ROWS_PER_CHUNK
                cur.execute(
                    ORDER_SELECT + """
WHERE o.opened_at >= %(from)s AND o.opened_at < %(to)s
  AND (%(status)s::text[] IS NULL OR o.status = ANY(%(status)s::text[]))
  AND (%(kind)s::text[] IS NULL OR o.kind = ANY(%(kind)s::text[]))
  AND (%(customer)s::text IS NULL OR a.customer_id = %(customer)s)
ORDER BY o.opened_at, o.order_id""", params)
                for r in cur:
                    yield order_public(r)

    return _csv("orders.csv", csv_chunks(ORDER_COLUMNS, rows()))


UPTIME_COLUMNS = ["key", "assets", "exposure_h", "downtime_h", "uptime_h", "availability",
                  "failures", "mtbf_h", "mttr_h"]


@router.get("/uptime.csv", responses=CSV, response_class=StreamingResponse)
def export_uptime(
    conn: DbConn,
    user: CurrentUser,
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
    group_by: Literal["asset", "model", "site", "customer"] = "asset",
    include_planned: bool = True,
):
    """Availability per asset (or model, site, customer) over [from, to) (default the last 30
    days), as ``/uptime`` computes it; the last row (empty key) is the whole selection."""
    report = uptime_route.uptime(conn, user, from_=from_, to=to, group_by=group_by,
                                 include_planned=include_planned, model=None, site=None,
                                 customer=None, asset=None, limit=5000)
    rows = [*report["rows"], {**report["fleet"], "key": ""}]
    return _csv("uptime.csv", csv_chunks([group_by if c == "key" else c for c in UPTIME_COLUMNS],
                                         ({**r, group_by: r["key"]} for r in rows)))


SLA_COLUMNS = ["group", "key", "orders", "responded_in_time", "response_breached",
               "restored_in_time", "restore_breached", "pending", "response_compliance_pct",
               "restore_compliance_pct", "compliance_pct", "first_time_fix_rate"]


@router.get("/sla.csv", responses=CSV, response_class=StreamingResponse)
def export_sla(
    conn: DbConn,
    user: CurrentUser,
    from_: Annotated[TimeQuery, Query(alias="from")] = None,
    to: TimeQuery = None,
    at: TimeQuery = None,
):
    """SLA standing per tier and per customer for orders opened in [from, to) (default the
    last 90 days), judged at ``at`` (default now), as ``/sla`` computes it."""
    report = sla_route.sla(conn, user, from_=from_, to=to, at=at, tier=None, customer=None,
                           horizon_h=8.0, limit=1)
    rows = [{"group": "tier", **g} for g in report["by_tier"]] + \
           [{"group": "customer", **g} for g in report["by_customer"]]
    return _csv("sla.csv", csv_chunks(SLA_COLUMNS, rows))
