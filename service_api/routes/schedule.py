"""The field schedule: the plan in force, a new plan, pins.

Reading needs the ``fleet`` right (staff roles; a customer token does not see the schedule).

- ``GET /schedule``: the latest plan (visits per technician with travel, unscheduled orders with
  the reason, technicians; ``{"plan_id": null}`` before the first); ``GET /schedule/{plan_id}``
  an earlier one.
- ``POST /schedule/plan`` (right ``schedule``): plan the horizon now (``scheduling.service``).
- ``PUT /schedule/pins/{order_id}`` / ``DELETE`` (right ``assign``): pin an order to a
  technician (and a start time); the next plan keeps it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, HTTPException, status
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel, Field

from scheduling import plans, service
from orders.state import Conflict, Invalid
from service_api.deps import CurrentUser, DbConn, requires
from service_api.params import ID_PATTERN, utc

router = APIRouter(prefix="/schedule", tags=["schedule"])


class PlanRequest(BaseModel):
    now: datetime | None = Field(None, description="planning time (default: now); naive means UTC")
    days: int = Field(service.DEFAULT_WORKING_DAYS, ge=1, le=14, description="working days in the horizon")
    time_limit_s: float = Field(service.DEFAULT_TIME_LIMIT_S, gt=0, le=120, description="solver seconds")
    regions: list[Annotated[str, Field(min_length=1, max_length=128, pattern=ID_PATTERN)]] | None = Field(
        None, max_length=100, description="territories to plan (default all)")


class PinRequest(BaseModel):
    technician_id: str = Field(min_length=1, max_length=64, pattern=ID_PATTERN)
    starts_at: datetime | None = Field(None, description="visit start; default any time in the horizon")


def _plan(conn, plan_id: int) -> dict[str, Any]:
    out = plans.read(conn, plan_id)
    if out is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no plan {plan_id}")
    return jsonable_encoder(out)


@router.get("", dependencies=[requires("fleet")])
def current_plan(conn: DbConn) -> dict[str, Any]:
    """The latest plan; ``{"plan_id": null}`` before the first."""
    out = plans.read(conn, None)
    return {"plan_id": None} if out is None else jsonable_encoder(out)


@router.get("/{plan_id}", dependencies=[requires("fleet")])
def one_plan(conn: DbConn, plan_id: int) -> dict[str, Any]:
    if not 0 < plan_id < 2**63:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no plan {plan_id}")
    return _plan(conn, plan_id)


@router.post("/plan", dependencies=[requires("schedule")], status_code=status.HTTP_201_CREATED)
def make_plan(conn: DbConn, user: CurrentUser, body: PlanRequest) -> dict[str, Any]:
    """Plan the horizon now: approved orders to technicians, pins kept, few changes. Order
    changes are recorded as made by the caller."""
    try:
        plan_id, _ = service.run(conn, now=utc(body.now, "now"), days=body.days, time_limit=body.time_limit_s,
                                 regions=body.regions, actor=user.actor)
    except (ValueError, Invalid) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    except Conflict as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return _plan(conn, plan_id)


@router.put("/pins/{order_id}", dependencies=[requires("assign")])
def pin(conn: DbConn, order_id: int, body: PinRequest) -> dict[str, Any]:
    if not 0 < order_id < 2**63:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no order {order_id}")
    try:
        with conn.transaction():
            plans.pin(conn, order_id, body.technician_id, utc(body.starts_at, "starts_at"), "api")
    except psycopg.errors.ForeignKeyViolation:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"no order {order_id} or no technician {body.technician_id!r}") from None
    return {"order_id": order_id, "technician_id": body.technician_id, "starts_at": body.starts_at}


@router.delete("/pins/{order_id}", dependencies=[requires("assign")], status_code=status.HTTP_204_NO_CONTENT)
def unpin(conn: DbConn, order_id: int) -> None:
    if not (0 < order_id < 2**63 and plans.unpin(conn, order_id)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"order {order_id} is not pinned")
