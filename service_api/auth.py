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
- ``admin`` can do all of the above and manages tokens, webhook subscriptions and SLA calendars;
- ``customer`` reads only its own customer's assets, orders, uptime, MTTR and SLA (the token
  is bound to a ``customer_id``); fleet-wide figures (ingest statistics) are not for it.

New tokens expire after ``settings.api_token_days`` (default 90) unless an expiry is given;
each token records when it was last used (to the minute).

>>> token = new_token()
>>> token.startswith("prg_") and len(token) == 47
True
>>> len(hash_token(token))
64
>>> can("planner", "schedule"), can("viewer", "schedule"), can("admin", "complete")
(True, False, True)
>>> can("customer", "read"), can("customer", "fleet")
(True, False)
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import psycopg
from psycopg.rows import dict_row

from prognos.config import get_settings

Role = Literal["viewer", "planner", "technician", "admin", "customer"]
ROLES: tuple[str, ...] = ("viewer", "planner", "technician", "admin", "customer")
TOKEN_PREFIX = "prg_"

# Which role may do what. "read" is every GET under /api/v1 (scoped to one customer for the
# customer role); "fleet" the fleet-wide operational figures.
RIGHTS: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read", "fleet"}),
    "planner": frozenset({"read", "fleet", "triage", "schedule", "assign", "hold", "cancel",
                          "create_order"}),
    "technician": frozenset({"read", "fleet", "start", "hold", "complete"}),
    "admin": frozenset({"read", "fleet", "triage", "schedule", "assign", "hold", "cancel",
                        "create_order", "start", "complete", "tokens", "webhooks", "calendars"}),
    "customer": frozenset({"read"}),
}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: the token's id, name and role, and the customer a customer token is
    bound to (None for staff roles, who see every customer)."""

    token_id: int
    name: str
    role: str
    customer_id: str | None = None

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
    customer_id: str | None = None,
    default_days: float | None = None,
) -> str:
    """Store a new token for ``name`` with ``role`` and return it (the only time it is seen).

    Without ``expires_at``/``expires_in`` it expires after ``default_days`` (default: the
    ``api_token_days`` setting; 0 = never). A ``customer`` token needs ``customer_id``."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if (role == "customer") != (customer_id is not None):
        raise ValueError("a customer token needs customer_id, and only a customer token has one")
    name = name.strip()
    if not 1 <= len(name) <= 100 or any(ord(c) < 32 for c in name):
        raise ValueError("token name must be 1-100 printable characters")
    if expires_in is not None:
        if expires_at is not None:
            raise ValueError("give expires_at or expires_in, not both")
        if expires_in <= timedelta(0):
            raise ValueError("expires_in must be positive")
    if expires_at is None and expires_in is None:
        days = get_settings().api_token_days if default_days is None else default_days
        expires_in = timedelta(days=days) if days > 0 else None
    token = new_token()
    with conn.cursor() as cur:
        if customer_id is not None:
            cur.execute("SELECT 1 FROM customers WHERE customer_id = %s", (customer_id,))
            if cur.fetchone() is None:
                raise ValueError(f"no customer {customer_id!r}")
        cur.execute(
            """INSERT INTO api_tokens (token_hash, name, role, expires_at, customer_id)
               VALUES (%s, %s, %s, COALESCE(%s, now() + %s), %s)""",
            (hash_token(token), name, role, expires_at, expires_in, customer_id),
        )
    if not conn.autocommit:
        conn.commit()
    return token


def authenticate(conn: psycopg.Connection, token: str) -> Principal | None:
    """The principal of a live (not revoked, not expired) token, else None. Records the use
    in ``last_used_at`` (at most once a minute per token, in the same statement)."""
    if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        return None
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """WITH t AS (
                   SELECT token_id, name, role, customer_id, last_used_at FROM api_tokens
                   WHERE token_hash = %s AND revoked_at IS NULL
                     AND (expires_at IS NULL OR expires_at > now())),
               -- SKIP LOCKED: concurrent requests with the same token never wait for the one
               -- recording the use (its row lock lasts until its request commits)
               stale AS (
                   SELECT a.token_id FROM api_tokens a JOIN t USING (token_id)
                   WHERE t.last_used_at IS NULL OR t.last_used_at < now() - interval '1 minute'
                   FOR UPDATE OF a SKIP LOCKED),
               used AS (
                   UPDATE api_tokens SET last_used_at = now() FROM stale
                   WHERE api_tokens.token_id = stale.token_id)
               SELECT token_id, name, role, customer_id FROM t""",
            (hash_token(token),),
        )
        row = cur.fetchone()
    return Principal(**row) if row else None


def list_tokens(conn: psycopg.Connection, *, include_revoked: bool = False) -> list[dict]:
    """Every token's metadata (never a hash), newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute(
            """SELECT token_id, name, role, customer_id, created_at, expires_at, revoked_at,
                      last_used_at,
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
