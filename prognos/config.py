"""Configuration: one pydantic-settings object, from PROGNOS_* environment variables and the
generated secrets file ``.prognos/services.env``.

Defaults match the services the project starts itself (``prognos services up``); the same code
runs against any TimescaleDB and any MQTT 5 broker given their addresses and credentials.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


def _state_dir() -> Path:
    return Path(os.environ.get("PROGNOS_STATE_DIR", ROOT / ".prognos"))


class Settings(BaseSettings):
    """Everything a Prognos process needs to know; ``Settings()`` reads the environment."""

    model_config = SettingsConfigDict(
        env_prefix="PROGNOS_",
        env_file=str(_state_dir() / "services.env"),
        env_file_encoding="utf-8",
        extra="ignore",
    )

    state_dir: Path = Field(default_factory=_state_dir)

    # TimescaleDB
    db_host: str = "127.0.0.1"
    db_port: int = Field(55432, ge=1, le=65535)
    db_name: str = "prognos"
    db_user: str = "prognos"
    db_password: str = ""
    db_admin_user: str = "postgres"
    db_admin_password: str = ""
    db_pool_max: int = Field(8, ge=1)

    # MQTT 5 broker
    mqtt_host: str = "127.0.0.1"
    mqtt_port: int = Field(18830, ge=1, le=65535)
    mqtt_ingest_user: str = "prognos-ingest"
    mqtt_ingest_password: str = ""
    mqtt_topic_prefix: str = "prognos/v1"

    # Service API
    api_host: str = "127.0.0.1"
    api_port: int = Field(8000, ge=1, le=65535)
    # new tokens expire after this many days unless told otherwise (0: never)
    api_token_days: float = Field(90.0, ge=0)
    # failed authentications per client address within the window before it is refused (429)
    auth_fail_limit: int = Field(10, ge=1)
    auth_fail_window_s: float = Field(300.0, gt=0)

    # Outbound webhooks (webhooks/): the dispatcher runs inside `prognos api` when on
    webhook_dispatch: bool = True
    webhook_poll_s: float = Field(1.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0)
    webhook_max_attempts: int = Field(15, ge=1)
    webhook_backoff_base_s: float = Field(2.0, gt=0)
    webhook_backoff_cap_s: float = Field(3600.0, gt=0)
    # Order events (and their settled webhook deliveries) kept this long once the order is
    # closed; the dispatcher prunes hourly (orders.events.prune)
    event_retention_days: int = Field(90, ge=1)

    # Telemetry retention (drop_chunks older than this)
    retention_days: int = Field(400, ge=1)

    # Detection / service orders
    risk_order_threshold: float = Field(0.9, gt=0, le=1)
    horizon_h: float = Field(24 * 14, gt=0)

    @field_validator("state_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def dsn(self) -> str:
        return self.dsn_for(self.db_name)

    def dsn_for(self, dbname: str, *, admin: bool = False) -> str:
        user = self.db_admin_user if admin else self.db_user
        password = self.db_admin_password if admin else self.db_password
        return (
            f"host={self.db_host} port={self.db_port} dbname={dbname} "
            f"user={user} password={password} application_name=prognos"
        )

    @property
    def mqtt_dir(self) -> Path:
        return self.state_dir / "mosquitto"

    @property
    def device_credentials(self) -> Path:
        """Device secrets written by ``prognos devices provision`` (JSON, mode 0600)."""
        return self.state_dir / "devices.json"

    @property
    def model_dir(self) -> Path:
        return self.state_dir / "models"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that makes a child process's ``Settings()`` equal ``settings``."""
    env = dict(os.environ)
    for key, value in settings.model_dump().items():
        env[f"PROGNOS_{key.upper()}"] = str(value)
    return env
