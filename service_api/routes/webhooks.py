"""Webhook subscriptions (admin): which URL receives which order events. Delivery, signing
and retries: see the ``webhooks`` package."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, status
from pydantic import BaseModel, ConfigDict, Field

from orders.events import TYPES
from service_api.deps import DbConn, requires
from webhooks.outbox import create_subscription, disable_subscription, list_subscriptions

router = APIRouter(prefix="/webhooks", tags=["webhooks"], dependencies=[requires("webhooks")])

EventType = Literal[tuple(sorted(TYPES))]  # type: ignore[valid-type]


class WebhookCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=8, max_length=2000, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$",
                     description="where events are POSTed")
    events: list[EventType] = Field(min_length=1, max_length=len(TYPES))
    description: str = Field("", max_length=500, pattern=r"^[^\x00-\x1f\x7f]*$")


class WebhookPublic(BaseModel):
    subscription_id: int
    url: str
    events: list[str]
    description: str
    created_at: datetime
    disabled_at: datetime | None
    delivered: int = 0
    pending: int = 0
    failed: int = 0


class WebhookCreated(WebhookPublic):
    secret: str = Field(description="HMAC-SHA256 signing key; shown once, store it now")


@router.get("", response_model=list[WebhookPublic])
def get_webhooks(conn: DbConn):
    """Live subscriptions with how many deliveries each has had, has pending and gave up on."""
    return list_subscriptions(conn)


@router.post("", response_model=WebhookCreated, status_code=status.HTTP_201_CREATED)
def post_webhook(conn: DbConn, body: WebhookCreate):
    """Subscribe ``url`` to ``events`` (from now on). Each delivery is signed with the returned
    secret: header ``Prognos-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``;
    ``Prognos-Event-Id`` identifies the event (delivery is at least once: dedupe on it)."""
    return create_subscription(conn, body.url, list(body.events), body.description)


@router.delete("/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_webhook(conn: DbConn, subscription_id: Annotated[int, Path(ge=1, le=2**63 - 1)]):
    """Stop a subscription (its undelivered events are dropped)."""
    if not disable_subscription(conn, subscription_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live subscription {subscription_id}")
