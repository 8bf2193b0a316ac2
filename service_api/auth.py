"""Bearer API tokens: creation, lookup, listing and revocation.

A token is ``prg_`` followed by 43 URL-safe characters (256 random bits). The database keeps
only its SHA-256 (table ``api_tokens``, migration 0006), so a leaked table grants nothing; the
token is shown once, when it is created.

Roles, each including the rights of those before it where it makes sense:

- ``viewer`` reads everything;
- ``planner`` also triages (approves or rejects proposed orders), schedules, assigns,
  re-prioritises, holds and cancels service orders, and opens preventive/corrective ones;
- ``technician`` also starts, holds (waiting for parts or the customer) and completes orders
  (recording the repair and first-time fix);
- ``admin`` can do all of the above and manages tokens.

>>> token = new_token()
>>> token.startswith("prg_") and len(token) == 47
True
>>> len(hash_token(token))
64
>>> can("planner", "schedule"), can("viewer", "schedule"), can("admin", "complete")
(True, False, True)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import psycopg
from psycopg.rows import dict_row

Role = Literal["viewer", "planner", "technician", "admin"]
ROLES: tuple[str, ...] = ("viewer", "planner", "technician", "admin")
TOKEN_PREFIX = "prg_"

# Which role may do what. "read" is every GET under /api/v1.
RIGHTS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "planner": frozenset({"read", "triage", "schedule", "assign", "hold", "cancel", "create_order"}),
    "technician": frozenset({"read", "start", "hold", "complete"}),
    "admin": frozenset(
        {"read", "triage", "schedule", "assign", "hold", "cancel", "create_order", "start", "complete",
         "tokens"}
    ),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, name and role."""

    token_id: int
    name: str
    role: str

    def can(self, right: str) -> bool:
        return can(self.role, right)

    @property
    def actor(self) -> str:
        """How the caller appears in service order history."""
        return f"{self.role}:{self.name}"


def can(role: str, right: str) -> bool:
    return right in RIGHTS.get(role, frozenset())


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(
    conn: psycopg.Connection,
    name: str,
    role: str,
    *,
    expires_at: datetime | None = None,
    expires_in: timedelta | None = None,
) -> str:
    """Store a new token for ``name`` with ``role`` and return it (the only time it is seen)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    name = name.strip()
    if not 1 <= len(name) <= 100 or any(ord(c) < 32 for c in name):
        raise ValueError("token name must be 1-100 printable characters")
    if expires_in is not None:
        if expires_at is not None:
            raise ValueError("give expires_at or expires_in, not both")
        if expires_in <= timedelta(0):
            raise ValueError("expires_in must be positive")
    token = new_token()
    with conn.cursor() as cur:
        cur.execute(
            """INSERT INTO api_tokens (token_hash, name, role, expires_at)
               VALUES (%s, %s, %s, COALESCE(%s, now() + %s))""",
            (hash_token(token), name, role, expires_at, expires_in),
        )
    if not conn.autocommit:
        conn.commit()
    return token


def authenticate(conn: psycopg.Connection, token: str) -> Principal | None:
    """The principal of a live (not revoked, not expired) token, else None."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT token_id, name, role FROM api_tokens
               WHERE token_hash = %s AND revoked_at IS NULL
                 AND (expires_at IS NULL OR expires_at > now())""",
            (hash_token(token),),
        )
        row = cur.fetchone()
    return Principal(**row) if row else None


def list_tokens(conn: psycopg.Connection, *, include_revoked: bool = False) -> list[dict]:
    """Every token's metadata (never a hash), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT token_id, name, role, created_at, expires_at, revoked_at,
                      (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > now())) AS active
               FROM api_tokens
               WHERE %s OR revoked_at IS NULL
               ORDER BY token_id DESC""",
            (include_revoked,),
        )
        return cur.fetchall()


def revoke_token(conn: psycopg.Connection, token_id: int) -> bool:
    """Revoke a token by id; False if there is no such live token."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE api_tokens SET revoked_at = now() WHERE token_id = %s AND revoked_at IS NULL",
            (token_id,),
        )
        done = cur.rowcount == 1
    if not conn.autocommit:
        conn.commit()
    return done
