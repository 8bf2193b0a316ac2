"""API tokens (admin only), and ``/me`` for any caller to see their own role and rights."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status
from psycopg.rows import dict_row

from service_api.auth import RIGHTS, create_token, hash_token, list_tokens, revoke_token
from service_api.deps import CurrentUser, DbConn, SettingsDep, requires
from service_api.models import Me, TokenCreate, TokenCreated, TokenPublic

router = APIRouter(prefix="/tokens", tags=["tokens"], dependencies=[requires("tokens")])
me_router = APIRouter(tags=["tokens"])


@me_router.get("/me", response_model=Me)
def me(user: CurrentUser):
    """The caller's token name, role and rights."""
    return {"token_id": user.token_id, "name": user.name, "role": user.role,
            "customer_id": user.customer_id, "rights": sorted(RIGHTS[user.role])}


@router.get("", response_model=list[TokenPublic])
def get_tokens(conn: DbConn, include_revoked: bool = False):
    return list_tokens(conn, include_revoked=include_revoked)


@router.post("", response_model=TokenCreated, status_code=status.HTTP_201_CREATED)
def post_token(conn: DbConn, settings: SettingsDep, body: TokenCreate):
    """Create a token; the response is the only time it is shown. It expires after
    ``expires_in_days``, by default the ``api_token_days`` setting (90). A ``customer`` token
    needs ``customer_id`` and sees only that customer's assets, orders and figures."""
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    try:
        token = create_token(conn, body.name, body.role, expires_in=expires,
                             customer_id=body.customer_id,
                             default_days=settings.api_token_days)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT token_id, name, role, customer_id, expires_at FROM api_tokens "
                    "WHERE token_hash = %s",
                    (hash_token(token),))
        row = cur.fetchone()
    return {**row, "token": token}


@router.delete("/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_token(conn: DbConn, user: CurrentUser,
                 token_id: Annotated[int, Path(ge=1, le=2**63 - 1)]):
    """Revoke a token (it stays listed with ``include_revoked``)."""
    if not revoke_token(conn, token_id):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no live token {token_id}")
