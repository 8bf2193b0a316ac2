"""Request and response models of the service API (pydantic 2).

Families follow the resource: ``XCreate`` (POST body), ``XUpdate`` (PATCH body), ``XPublic``
(what a GET returns). Times are aware UTC datetimes; hours are floats.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orders.state import DECISION_REASONS, HOLD_REASONS, STATUSES
from schemas.telemetry import AS_FOUND_GRADES

T = TypeVar("T")

OrderStatus = Literal[STATUSES]
OrderReason = Literal[DECISION_REASONS + HOLD_REASONS]
OrderKind = Literal["predictive", "preventive", "corrective"]
Role = Literal["viewer", "planner", "technician", "admin", "customer"]

_PRINTABLE = r"^[^\x00-\x1f\x7f]*$"


def stripped(v: str, what: str) -> str:
    """A free-text field without its surrounding blanks; a blank one is a clear error."""
    if not v.strip():
        raise ValueError(f"{what} must not be blank")
    return v.strip()


class Page(BaseModel, Generic[T]):
    items: list[T]
    count: int = Field(description="rows matching the filters, over all pages")
    limit: int
    offset: int


# --- service orders -------------------------------------------------------------------------


class ServiceOrderPublic(BaseModel):
    order_id: int
    asset_id: str
    mode: str
    kind: OrderKind
    status: OrderStatus
    priority: int
    sla_tier: str | None
    risk: float | None
    predicted_failure_at: datetime | None
    predicted_failure_lo: datetime | None = Field(None, description="10th percentile of the predicted failure time")
    predicted_failure_hi: datetime | None = Field(None, description="90th percentile of the predicted failure time")
    predicted_mttr_h: float | None
    respond_by: datetime | None
    opened_at: datetime
    closed_at: datetime | None
    first_time_fix: bool | None
    reason: str | None = Field(None, description="reason code of the last status change")
    status_at: datetime | None = Field(None, description="when the current status began")
    fleet_incident_id: int | None = None
    scheduled_for: datetime | None = None
    assignee: str | None = None
    model_id: str
    site_id: str
    customer_id: str
    detail: dict[str, Any] = {}


class OrderHistoryPublic(BaseModel):
    at: datetime
    from_status: str | None = Field(description="NULL: the order was opened")
    to_status: str
    actor: str = Field(description="'role:name' of a person, 'detection', 'triage' or 'device:<id>'")
    reason: str | None
    note: str


class OrderStatusPublic(BaseModel):
    status: str
    live: bool
    description: str


class OrderReasonPublic(BaseModel):
    reason: str
    description: str


class OrderTransitionPublic(BaseModel):
    from_status: str
    to_status: str
    right: str


class OrderVocabulary(BaseModel):
    statuses: list[OrderStatusPublic]
    transitions: list[OrderTransitionPublic]
    reasons: list[OrderReasonPublic]
    decision_reasons: list[str]
    hold_reasons: list[str]


class OrderDecision(BaseModel):
    """A planner's approval (or the end of a hold): when (default now) and an optional note."""

    model_config = ConfigDict(extra="forbid")

    at: datetime | None = None
    note: str = Field("", max_length=2000, pattern=_PRINTABLE)


class OrderRejection(OrderDecision):
    reason: Literal[DECISION_REASONS] = Field(
        description="false_alarm: no fault, detection re-baselines that asset and mode")


class DutyChangeCreate(BaseModel):
    """A confirmed change of an asset's duty: why, and when it began (default now)."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500, pattern=_PRINTABLE,
                        description="what changed (new process, load profile, set point, move)")
    at: datetime | None = None

    @field_validator("reason")
    @classmethod
    def _reason(cls, v: str) -> str:
        return stripped(v, "reason")


class DutyChangePublic(BaseModel):
    id: int
    asset_id: str
    at: datetime
    reason: str
    actor: str
    recorded_at: datetime


class RepairPublic(BaseModel):
    id: int
    asset_id: str
    mode: str
    order_id: int | None
    kind: str
    started_at: datetime
    finished_at: datetime
    duration_h: float
    first_time_fix: bool | None = Field(description="the technician's word; NULL: not reported")
    as_found: dict[str, str] | None = Field(
        None, description="the as-found condition of the asset's failure modes the repair reported; NULL: none")


class ServiceOrderDetail(ServiceOrderPublic):
    history: list[OrderHistoryPublic]
    repairs: list[RepairPublic]


class ServiceOrderUpdate(BaseModel):
    """A status transition and/or planning change. ``at`` is when it happened (default now):
    a technician may record arrival or completion after the fact."""

    model_config = ConfigDict(extra="forbid")

    status: Literal[STATUSES[1:]] | None = None
    reason: OrderReason | None = Field(
        None, description="rejected/cancelled: a decision reason; on_hold: waiting_customer or waiting_parts")
    scheduled_for: datetime | None = None
    assignee: str | None = Field(None, min_length=1, max_length=100, pattern=_PRINTABLE)
    priority: int | None = Field(None, ge=1, le=5)
    first_time_fix: bool | None = Field(
        None, description="required when completing: was the fault fixed on the first visit?"
    )
    as_found: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")], Literal[AS_FOUND_GRADES]] | None = Field(
        None, description="optional when completing: the as-found condition of the asset's failure modes "
        "(any of its model's modes, not only the one repaired) as graded before the work: good (nothing to "
        "see), worn (visible wear: the degradation under way, still serviceable), degraded (worn beyond "
        "service, fixed while there), failed. Alarm-level learning uses it.")
    at: datetime | None = None
    note: str = Field("", max_length=2000, pattern=_PRINTABLE)


class ServiceOrderCreate(BaseModel):
    """A planner's preventive or corrective order (predictive ones come from detection)."""

    model_config = ConfigDict(extra="forbid")

    asset_id: str = Field(min_length=1, max_length=128, pattern=_PRINTABLE)
    mode: str = Field(min_length=1, max_length=64, pattern=_PRINTABLE)
    kind: Literal["preventive", "corrective"]
    priority: int = Field(3, ge=1, le=5)
    opened_at: datetime | None = None
    respond_by: datetime | None = None
    scheduled_for: datetime | None = None
    assignee: str | None = Field(None, min_length=1, max_length=100, pattern=_PRINTABLE)
    note: str = Field("", max_length=2000, pattern=_PRINTABLE)


# --- assets ---------------------------------------------------------------------------------


class AssetPublic(BaseModel):
    asset_id: str
    serial: str
    model_id: str
    model_name: str
    category: str
    customer_id: str
    customer_name: str
    site_id: str
    site_name: str
    region: str
    install_date: date
    lifecycle_stage: str
    warranty_end: date | None
    in_warranty: bool
    contract_tier: str | None
    contract_ends_on: date | None
    risk: float | None = Field(description="highest failure risk over the asset's failure modes")
    health: float | None = Field(description="lowest health over the failure modes (1 = new)")
    worst_mode: str | None
    rul_h: float | None = Field(description="shortest predicted remaining useful life")
    rul_lo_h: float | None = Field(None, description="10th percentile of that remaining life (hours)")
    rul_hi_h: float | None = Field(None, description="90th percentile of that remaining life (hours)")
    p_fail: float | None = Field(None, description="highest probability of a failure of one of the "
                                 "asset's modes within the predictor's horizon")
    health_updated_at: datetime | None
    open_orders: int


class SensorPublic(BaseModel):
    position: int
    name: str
    unit: str
    min_value: float
    max_value: float


class ModeHealthPublic(BaseModel):
    mode: str
    description: str
    predictable: bool
    nominal_mttr_h: float
    health: float | None
    risk: float | None
    rul_h: float | None
    rul_lo_h: float | None = None
    rul_hi_h: float | None = None
    p_fail: float | None = Field(None, description="probability of a failure of this mode within horizon_h")
    horizon_h: float | None = None
    predicted_at: datetime | None = None
    updated_at: datetime | None
    detail: dict[str, Any] | None


class AnomalyPublic(BaseModel):
    id: int
    time: datetime
    sensor: str | None
    detector: str
    score: float
    detail: dict[str, Any]


class DowntimePublic(BaseModel):
    id: int
    mode: str | None
    started_at: datetime
    ended_at: datetime | None
    planned: bool
    duration_h: float | None


class AssetDetail(AssetPublic):
    device_id: str | None
    device_status: str | None
    sensors: list[SensorPublic]
    modes: list[ModeHealthPublic]
    anomalies: list[AnomalyPublic]
    orders: list[ServiceOrderPublic]
    downtime: list[DowntimePublic]
    repairs: list[RepairPublic]


class TelemetryPoint(BaseModel):
    t: datetime
    avg: float | None
    min: float | None
    max: float | None
    n: int


class TelemetrySeries(BaseModel):
    asset_id: str
    device_id: str
    sensor: str
    unit: str
    resolution: Literal["raw", "1m", "1h", "1d"]
    source: str = Field(description="table the points were read from")
    from_: datetime = Field(alias="from")
    to: datetime
    points: list[TelemetryPoint]

    model_config = ConfigDict(populate_by_name=True)


# --- uptime, MTTR, SLA ----------------------------------------------------------------------


class UptimeRow(BaseModel):
    key: str | None = Field(description="asset, model, site or customer id; None for the fleet")
    assets: int
    exposure_h: float = Field(description="hours in service within the window")
    downtime_h: float
    uptime_h: float
    availability: float | None
    failures: int = Field(description="unplanned downtime events that started in the window")
    mtbf_h: float | None
    mttr_h: float | None = Field(description="mean unplanned downtime per failure")


class UptimeReport(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    group_by: str
    include_planned: bool
    fleet: UptimeRow
    rows: list[UptimeRow]

    model_config = ConfigDict(populate_by_name=True)


class MttrGroup(BaseModel):
    model_id: str | None
    mode: str | None
    repairs: int
    mttr_h: float | None
    median_h: float | None
    p90_h: float | None
    first_time_fix_rate: float | None
    nominal_mttr_h: float | None


class PredictedMttr(BaseModel):
    order_id: int
    asset_id: str
    model_id: str
    mode: str
    status: str
    priority: int
    predicted_mttr_h: float | None
    actual_mttr_h: float | None = Field(description="historical mean for this model and mode")
    nominal_mttr_h: float | None
    expected_mttr_h: float | None = Field(description="predicted, else actual, else nominal")
    model_mttr_h: float | None = Field(None, description="the repair-time model's median for this order now")
    mttr_lo_h: float | None = Field(None, description="lower end of its conformal interval")
    mttr_hi_h: float | None = Field(None, description="upper end (null: unbounded)")
    mttr_coverage: float | None = Field(None, description="nominal coverage of the interval")
    mttr_basis: Literal["group", "mode", "pooled", "manual", "none"] | None = Field(
        None, description="group: calibrated on this model and mode's repairs; mode: on this "
                          "failure mode's across models; pooled; manual: few repairs, centred "
                          "on the nominal MTTR")


class MttrReport(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    by_mode: list[MttrGroup]
    by_model: list[MttrGroup]
    open_orders: list[PredictedMttr]

    model_config = ConfigDict(populate_by_name=True)


class SlaGroup(BaseModel):
    key: str
    orders: int = Field(description="orders with an SLA tier opened in the window, not cancelled")
    responded_in_time: int
    response_breached: int
    restored_in_time: int
    restore_breached: int
    pending: int = Field(description="still open and not yet past a target")
    response_compliance_pct: float | None
    restore_compliance_pct: float | None
    compliance_pct: float | None = Field(description="orders meeting both targets, of decided ones")
    first_time_fix_rate: float | None


class AtRiskOrder(BaseModel):
    order_id: int
    asset_id: str
    customer_id: str
    sla_tier: str
    status: str
    priority: int
    respond_by: datetime
    hours_left: float
    overdue: bool


class SlaReport(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    at: datetime
    by_tier: list[SlaGroup]
    by_customer: list[SlaGroup]
    at_risk: list[AtRiskOrder]

    model_config = ConfigDict(populate_by_name=True)


# --- tokens ---------------------------------------------------------------------------------


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
    role: Role
    customer_id: str | None = Field(None, min_length=1, max_length=128,
                                    pattern=r"^[^\x00-\x1f\x7f]+$",
                                    description="required for (and only for) role customer")
    expires_in_days: float | None = Field(None, gt=0, le=3650,
                                          description="default: the api_token_days setting")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        return stripped(v, "name")


class TokenPublic(BaseModel):
    token_id: int
    name: str
    role: Role
    customer_id: str | None
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None
    active: bool


class TokenCreated(BaseModel):
    token_id: int
    name: str
    role: Role
    customer_id: str | None
    expires_at: datetime | None
    token: str = Field(description="shown once; store it now")


class Me(BaseModel):
    token_id: int
    name: str
    role: Role
    customer_id: str | None
    rights: list[str]


# --- SLA clocks, triage, service figures (orders/) ------------------------------------------


class SlaClockPublic(BaseModel):
    name: Literal["response", "restore"]
    state: Literal["not_started", "in_progress", "nearing_breach", "breached", "met", "paused", "cancelled"]
    started_at: datetime | None
    deadline: datetime | None
    warn_at: datetime | None
    stopped_at: datetime | None
    paused_h: float = Field(description="calendar hours on hold (not counted)")
    hours_left: float | None = Field(description="wall hours to the deadline; negative: past it")


class OrderSlaPublic(BaseModel):
    order_id: int
    asset_id: str
    mode: str
    kind: str
    status: str
    priority: int
    customer_id: str
    model_id: str
    sla_tier: str | None
    response: SlaClockPublic | None
    restore: SlaClockPublic | None
    breach_probability: float | None = Field(
        description="P(restore after the restore deadline), live orders; orders/sla.py")
    arrival: datetime | None = Field(description="assumed technician arrival (visit or now + wait, + travel)")
    repair_median_h: float | None
    repair_lo_h: float | None = Field(description="10 % quantile of the repair-time distribution")
    repair_hi_h: float | None = Field(description="90 % quantile of the repair-time distribution")
    repair_source: str | None = Field(description="'model' (MTTR model) or 'nominal' (service manual prior)")


class OrderSlaList(BaseModel):
    at: datetime
    items: list[OrderSlaPublic]


class Holiday(BaseModel):
    model_config = ConfigDict(extra="forbid")

    day: date = Field(description="local date without working hours")
    name: str = Field("", max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class SlaCalendarPublic(BaseModel):
    calendar: str
    timezone: str
    weekdays: list[int] = Field(description="ISO weekdays with working hours, 1 = Monday")
    day_start_h: float
    day_end_h: float
    description: str
    holidays: list[Holiday]


class SlaCalendarUpdate(BaseModel):
    """What to change; ``holidays`` replaces the calendar's list."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_+\-/]+$",
                                 description="IANA time zone, e.g. Europe/Berlin")
    weekdays: list[Annotated[int, Field(ge=1, le=7)]] | None = Field(None, min_length=1, max_length=7)
    day_start_h: float | None = Field(None, ge=0, lt=24)
    day_end_h: float | None = Field(None, gt=0, le=24)
    holidays: list[Holiday] | None = Field(None, max_length=1000)


class FleetIncidentPublic(BaseModel):
    incident_id: int
    model_id: str
    status: Literal["open", "confirmed", "dismissed"]
    opened_at: datetime
    window_h: float
    assets: int
    fleet_size: int
    modes: list[str]
    orders: int
    resolved_at: datetime | None
    resolved_by: str | None
    note: str


class FleetIncidentResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["confirmed", "dismissed"] = Field(
        description="confirmed: approve its proposals; dismissed (data, firmware, supply): reject them as false alarms")
    note: str = Field("", max_length=2000, pattern=_PRINTABLE)


class PrecisionRow(BaseModel):
    model_id: str
    mode: str
    orders: int
    confirmed: int
    false_alarms: int
    dismissed_other: int
    live: int
    precision: float | None


class FirstTimeFixRow(BaseModel):
    model_id: str | None
    mode: str | None
    repairs: int
    judged: int
    fixed_first_time: int
    repeated: int
    technician_answered: int
    first_time_fix_rate: float | None
    repeat_rate: float | None


class BillingRow(BaseModel):
    kind: str
    billing: Literal["warranty", "contract", "billable"]
    orders: int
    completed: int


class ServiceFigures(BaseModel):
    from_: datetime = Field(alias="from")
    to: datetime
    at: datetime
    first_time_fix: list[FirstTimeFixRow]
    billing: list[BillingRow]
    precision: list[PrecisionRow]

    model_config = ConfigDict(populate_by_name=True)


class RenewalCandidate(BaseModel):
    contract_id: str
    asset_id: str
    tier: str
    starts_on: date
    ends_on: date
    days_left: int
    model_id: str
    customer_id: str
    site_id: str
    availability: float | None
    downtime_h: float
    orders: int
    restore_met: int
    restore_breached: int
    restore_compliance: float | None
