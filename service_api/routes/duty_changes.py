"""Confirmed changes of an asset's duty (:mod:`orders.duty`): a planner records that an asset
now runs a different duty, and detection re-baselines every sensor of it (its readings from
then on are the new normal, not a fault)."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, status

from orders import duty
from service_api.deps import CurrentUser, DbConn, requires, visible
from service_api.models import DutyChangeCreate, DutyChangePublic
from service_api.routes.assets import AssetId
from service_api.routes.service_orders import _when

router = APIRouter(prefix="/assets", tags=["assets"])


def _asset_customer(conn, asset_id: str, user) -> None:
    row = conn.execute("SELECT customer_id FROM assets WHERE asset_id = %s", (asset_id,)).fetchone()
    if row is None or not visible(user, row[0]):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {asset_id!r}")


@router.post("/{asset_id}/duty-changes", response_model=DutyChangePublic, status_code=status.HTTP_201_CREATED,
             dependencies=[requires("triage")])
def record_duty_change(conn: DbConn, user: CurrentUser, asset_id: AssetId, body: DutyChangeCreate):
    """A planner confirms that the asset now runs a different duty (``reason``; ``at``: when
    it began, default now, not in the future). Detection re-baselines every sensor of the
    asset at its next step: the detectors learn the new normal from the readings that follow,
    and the evidence of every failure mode starts over. Nothing is silenced."""
    _asset_customer(conn, asset_id, user)
    try:
        rec = duty.record(conn, asset_id, body.reason, actor=user.actor, at=_when(body.at))
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, str(exc)) from exc
    return vars(rec)


@router.get("/{asset_id}/duty-changes", response_model=list[DutyChangePublic])
def list_duty_changes(conn: DbConn, user: CurrentUser, asset_id: AssetId):
    """The asset's recorded changes of duty, newest first (at most 50)."""
    _asset_customer(conn, asset_id, user)
    return [vars(r) for r in duty.for_asset(conn, asset_id)]
