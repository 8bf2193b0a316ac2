"""Device credentials: provisioning, revocation, listing.

A device gets a random secret; the database keeps only its Mosquitto ``$7$`` hash, the secret
goes to the operator (and to ``settings.device_credentials`` so the simulator can publish as the
device). The broker's password file and ACL are re-rendered from the table and reloaded, so a
revoked device is cut off at once.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import psycopg

from prognos.config import Settings
from ops.services import mosquitto


def _load(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def _save(path: Path, creds: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(creds, f)
    tmp.replace(path)


def credentials(settings: Settings) -> dict[str, str]:
    """device_id -> secret for the devices provisioned from this state folder."""
    return _load(settings.device_credentials)


def provision(settings: Settings, pairs: list[tuple[str, str]], *, reload: bool = True,
              rotate: bool = False) -> dict[str, str]:
    """Create (or re-activate) devices for assets; return {device_id: secret}.

    An active device that already has a stored secret keeps it unless ``rotate``.
    """
    creds = _load(settings.device_credentials)
    out: dict[str, str] = {}
    rows = []
    with psycopg.connect(settings.dsn) as conn:
        existing = {d: s for d, s in conn.execute(
            "SELECT device_id, status FROM devices WHERE device_id = ANY(%s)", ([d for d, _ in pairs],))}
        for device_id, asset_id in pairs:
            if existing.get(device_id) == "active" and device_id in creds and not rotate:
                out[device_id] = creds[device_id]
                continue
            secret = secrets.token_urlsafe(18)
            out[device_id] = secret
            rows.append((device_id, asset_id, mosquitto.hash_password(secret)))
        if rows:
            with conn.cursor() as cur:
                cur.executemany(
                    """INSERT INTO devices (device_id, asset_id, password_hash) VALUES (%s, %s, %s)
                       ON CONFLICT (device_id) DO UPDATE SET password_hash = EXCLUDED.password_hash,
                           asset_id = EXCLUDED.asset_id, status = 'active', revoked_at = NULL""", rows)
        conn.commit()
        creds.update(out)
        _save(settings.device_credentials, creds)
        if reload and rows:
            mosquitto.reload(settings, conn)
    return out


def revoke(settings: Settings, device_id: str) -> bool:
    """Revoke a device; the broker drops it at once. False if it was unknown."""
    with psycopg.connect(settings.dsn) as conn:
        hit = conn.execute("UPDATE devices SET status = 'revoked', revoked_at = now() "
                           "WHERE device_id = %s RETURNING 1", (device_id,)).fetchone()
        conn.commit()
        creds = _load(settings.device_credentials)
        if creds.pop(device_id, None) is not None:
            _save(settings.device_credentials, creds)
        mosquitto.reload(settings, conn)
    return bool(hit)
