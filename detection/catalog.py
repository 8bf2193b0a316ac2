"""What detection knows about the installed base, read from the database: product models and
their sensors, failure modes and the sensors each moves, devices -> assets -> models, and the
service contract (SLA tier) in force for an asset at a time.

A failure mode's signature is the one ``prognos train`` learned from the platform's history
(``learned_signatures``, :mod:`detection.signatures`) once enough failures are behind it, and
otherwise the manufacturer's directions (``failure_modes.signature``: +1 / -1 per sensor the
mode moves); ``ModelInfo.learned`` says which."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import psycopg

from detection import signatures


@dataclass
class ModelInfo:
    model_id: str
    sensors: list[str]
    modes: list[str]                     # failure modes with a precursor (predictable)
    mode_mask: np.ndarray                # bool[n_modes, n_sensors]: sensors a mode moves
    signature: np.ndarray                # float[n_modes, n_sensors]: signed direction (0 = not moved)
    absolute: np.ndarray                 # bool[n_modes]: direction unknown, magnitudes only
    intermittent: np.ndarray             # bool[n_modes]: shows as spikes rather than a drift
    mttr_prior_h: dict[str, float]
    all_modes: list[str] = field(default_factory=list)
    #: bool[n_modes]: signature learned from history (else the manufacturer's directions)
    learned: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))

    @property
    def condition_sensors(self) -> list[int]:
        """Sensors no failure mode moves (load, speed, ambient): operating-regime inputs."""
        moved = self.mode_mask.any(axis=0) if len(self.modes) else np.zeros(len(self.sensors), bool)
        return [i for i in range(len(self.sensors)) if not moved[i]]


@dataclass
class Contract:
    tier: str
    rank: int
    response_h: float
    restore_h: float
    starts_on: date
    ends_on: date


@dataclass
class Catalog:
    models: dict[str, ModelInfo]
    device_asset: dict[str, str]
    asset_model: dict[str, str]
    contracts: dict[str, list[Contract]]
    asset_devices: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def load(cls, conn: psycopg.Connection) -> "Catalog":
        sensors: dict[str, list[str]] = {}
        for model_id, name in conn.execute("SELECT model_id, name FROM sensors ORDER BY model_id, position"):
            sensors.setdefault(model_id, []).append(name)
        modes: dict[str, list] = {}
        for row in conn.execute("SELECT model_id, mode, sensors, predictable, mttr_h, signature, intermittent "
                                "FROM failure_modes ORDER BY model_id, mode"):
            modes.setdefault(row[0], []).append(row[1:])
        learned_all = signatures.load(conn)
        models = {}
        for model_id, names in sensors.items():
            mm = modes.get(model_id, [])
            pred = [m for m in mm if m[2] and m[1]]
            mask = np.zeros((len(pred), len(names)), dtype=bool)
            sig = np.zeros((len(pred), len(names)))
            absolute = np.zeros(len(pred), dtype=bool)
            learned = np.zeros(len(pred), dtype=bool)
            for i, (mode, moved, _p, _h, signature, _int) in enumerate(pred):
                for s in moved:
                    if s in names:
                        mask[i, names.index(s)] = True
                found = learned_all.get((model_id, mode))
                if signatures.usable(found):
                    signature, learned[i] = found.signature, True
                for s, v in (signature or {}).items():
                    if s in names:
                        sig[i, names.index(s)] = float(v)
                        mask[i, names.index(s)] = True
                if not sig[i].any():            # direction unknown: every moved sensor, either way
                    sig[i], absolute[i] = mask[i], True
            intermittent = np.array([bool(m[5]) for m in pred], dtype=bool)
            models[model_id] = ModelInfo(model_id, names, [m[0] for m in pred], mask, sig, absolute, intermittent,
                                         {m[0]: float(m[3]) for m in mm}, [m[0] for m in mm], learned)
        device_asset, asset_model = {}, {}
        for device_id, asset_id, model_id in conn.execute(
                "SELECT d.device_id, a.asset_id, a.model_id FROM devices d JOIN assets a USING (asset_id)"):
            device_asset[device_id] = asset_id
            asset_model[asset_id] = model_id
        contracts: dict[str, list[Contract]] = {}
        for asset_id, *rest in conn.execute(
                "SELECT c.asset_id, c.tier, t.rank, t.response_h, t.restore_h, c.starts_on, c.ends_on "
                "FROM service_contracts c JOIN sla_tiers t USING (tier)"):
            contracts.setdefault(asset_id, []).append(Contract(*rest))
        asset_devices: dict[str, list[str]] = {}
        for d, a in device_asset.items():
            asset_devices.setdefault(a, []).append(d)
        return cls(models, device_asset, asset_model, contracts, asset_devices)

    def contract(self, asset_id: str, at: datetime) -> Contract | None:
        """The contract in force for the asset on ``at`` (the most demanding if several)."""
        day = at.date()
        live = [c for c in self.contracts.get(asset_id, []) if c.starts_on <= day <= c.ends_on]
        return min(live, key=lambda c: c.rank) if live else None
