"""A fleet of virtual assets: operating conditions, degradation, failures, repairs and
maintenance, sensor readings with noise and sensor faults, and the exact ground truth.

The physics is vectorised per product model over ``(n_steps, n_devices, n_sensors)``:

* **Conditions**: load ``L`` follows each asset's duty pattern (continuous, two-shift or
  comfort cooling), daily and weekly cycles and a slow wander; ambient temperature follows its
  site's climate (season, day, weather).  All are functions of absolute time.
* **Degradation**: a failure mode starts when the integrated hazard (base rate x asset
  frailty x age x load x time since preventive maintenance) crosses an exponential budget.
  Progress then grows with load while the machine runs; damage is ``progress ** shape``
  (bearing wear accelerates, fouling creeps) and moves the mode's sensors; the asset fails at
  progress 1.  Sudden failures have no precursor.  Electrical faults show as current spikes
  and voltage dips whose rate and size grow with damage.
* **Failure and repair**: the machine stops (readings of a stopped machine continue); a
  technician of the site's region (:mod:`simulator.technicians`: skill level 1-3) arrives
  after the SLA tier's response time and repairs in a time drawn from the failure mode, product
  model, site, the technician's skill, the hour it starts and parts availability.  Scheduled preventive maintenance
  partly restores health; :meth:`Fleet.apply_maintenance` acts on a predictive order.
* **As-found condition**: every visit (corrective, predictive, preventive) reports in its
  ``repair_end`` event a grade per failure mode as the technician found it before working
  (``as_found``: :data:`GRADES` by the bands :data:`GRADE_BANDS` of the mode's damage; the mode
  that failed is ``failed``), misgraded by one step with chance :data:`MISGRADE_P` per mode (the
  platform is not told).  A mode reported ``degraded`` or worse is fixed while there (its
  degradation removed at the end of the visit, listed as ``restored``), as the platform assumes
  when it resets the asset on any repair; a ``worn`` one is left running.
* **Sensor faults** (not equipment failures): stuck values, dropouts and spiky episodes, plus
  isolated missing values.

Everything resolves at step resolution, and every random draw is keyed by what it is for
(an asset's events, a model's step time), so a seed reproduces the fleet and its ground truth
exactly (and its readings to float rounding) however a period is cut into :meth:`Fleet.step`
calls.

>>> from datetime import datetime, timezone
>>> fleet = Fleet(FleetSpec(n_assets=6, seed=1, start=datetime(2026, 1, 5, tzinfo=timezone.utc)))
>>> block = fleet.step(None, 60, 60.0)
>>> times, device_ids, values = block["PMP-200"]
>>> values.shape[0], values.shape[2], values.dtype
(60, 11, dtype('float32'))
>>> fleet.clock.isoformat()
'2026-01-05T01:00:00+00:00'
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import numpy as np
from scipy.signal import lfilter

from schemas.telemetry import AS_FOUND_GRADES
from simulator.catalog import CATALOG, ProductModel
from simulator.geography import place_sites
from simulator.ground_truth import GroundTruth, rfc3339
from simulator.technicians import record, roster, visit

HOUR = 3600.0
DAY = 86400.0
YEAR = 365.25 * DAY
BLOCK_READINGS = 1_000_000  # readings per internal sub-block (bounds the working memory)
MAX_BLOCK_S = 3600.0  # simulated seconds per internal sub-block (<= MIN_RESPONSE_H)
MIN_RESPONSE_H = 1.0
TRIP_SIZE = 0.75  # relative spike size above which the drive trips (reported, not a failure)
TRIP_CODE = "E42"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
TIERS = ("platinum", "gold", "silver", "bronze")
TIER_P = (0.1, 0.3, 0.4, 0.2)
TIER_RESPONSE_H = {"platinum": 4.0, "gold": 8.0, "silver": 24.0, "bronze": 72.0}
PATTERNS = ("continuous", "two_shift", "comfort")
SENSOR_FAULTS = ("stuck", "dropout", "spiky")
SENSOR_FAULT_PER_YEAR = 3.0
SENSOR_FAULT_MEDIAN_H = {"stuck": 6.0, "dropout": 2.0, "spiky": 8.0}
DROPOUT_P = 2e-4  # isolated missing values (per sensor reading)
REGIONS = ("north", "south", "east", "west", "central")
# preventive maintenance: fraction of progress left per mode (fouling cleaned, bearings
# lubricated, seals adjusted, connections re-torqued)
PM_KEEP = {"bearing_wear": 0.6, "seal_leak": 0.7, "fouling": 0.0, "electrical": 0.8}
# as-found condition a technician reports for every failure mode on any visit (failure
# reporting as in Maximo / SAP PM work-order closure): grade bands on the mode's damage
# (progress ** shape, what moves its sensors; 0 = as new, 1 = failed). ``good``: below
# GRADE_BANDS[0] (within a new machine's tolerance, nothing to see); ``worn``: visible wear, the
# degradation is under way but the part is serviceable; ``degraded``: at or above GRADE_BANDS[1],
# the technician replaces or cleans it while there; ``failed``: the mode that failed.
GRADES = AS_FOUND_GRADES     # the contract's grades (schemas.telemetry)
GRADE_BANDS = (0.1, 0.5)
#: chance a technician misgrades a mode by one step (up or down); the platform is not told
MISGRADE_P = 0.1


@dataclass
class FleetSpec:
    n_assets: int = 500
    seed: int = 0
    start: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=timezone.utc))
    models: dict[str, float] | list[str] | None = None  # mix (None: every model, equal shares)
    id_prefix: str = "sim"
    n_customers: int | None = None  # None: one per 50 assets
    sites_per_customer: int = 3
    hazard_scale: float = 1.0  # multiplies every onset hazard (short demos want more events)
    pm_interval_days: float = 180.0
    sensor_faults: bool = True
    pre_existing: bool = True  # degradations already under way at the start

    def __post_init__(self):
        if self.n_assets < 1:
            raise ValueError("n_assets must be >= 1")
        if self.start.tzinfo is None:
            raise ValueError("FleetSpec.start must be timezone-aware (UTC)")
        if self.hazard_scale < 0:
            raise ValueError("hazard_scale must be >= 0")
        models = self.models if self.models is not None else list(CATALOG)
        unknown = [m for m in models if m not in CATALOG]
        if unknown:
            raise ValueError(f"unknown product models {unknown}; known: {sorted(CATALOG)}")


@dataclass(frozen=True)
class CustomerSpec:
    customer_id: str
    name: str


@dataclass(frozen=True)
class SiteSpec:
    site_id: str
    customer_id: str
    name: str
    region: str
    tz_h: float  # local time offset
    mean_temp: float  # annual mean ambient, degC
    repair_factor: float  # travel, access: multiplies repair time
    parts_unavailable_p: float  # chance a repair waits for parts


@dataclass(frozen=True)
class AssetSpec:
    asset_id: str
    device_id: str
    serial: str
    model_id: str
    site_id: str
    customer_id: str
    tier: str
    install_date: date
    pattern: str  # duty pattern
    warranty_end: date


@dataclass
class _SensorFault:
    dev: int
    sensor: int
    kind: str
    start: float
    end: float
    stuck: float = math.nan


class _Group:
    """Arrays for the devices of one product model (index i = position in the group)."""

    def __init__(self, pm: ProductModel, rows: list[int], assets: list[AssetSpec],
                 sites: dict[str, SiteSpec], spec: FleetSpec, rng: np.random.Generator,
                 gidx: int = 0):
        self.pm = pm
        # randomness keyed by what it is for, not by call order, so that any chunking of
        # the same period gives the same fleet: one stream per asset for its events, one
        # per (model, step time) for noise, spikes and dropouts
        self.ev_rng = [np.random.Generator(np.random.PCG64(
            np.random.SeedSequence([spec.seed, int(r), 1]))) for r in rows]
        # which technician comes: a stream of its own, so the other draws stay as they were
        self.tech_rng = [np.random.Generator(np.random.PCG64(
            np.random.SeedSequence([spec.seed, int(r), 2]))) for r in rows]
        # the technician's misgrading of the as-found condition: a stream of its own too
        self.grade_rng = [np.random.Generator(np.random.PCG64(
            np.random.SeedSequence([spec.seed, int(r), 3]))) for r in rows]
        self._philox_key = (int(spec.seed) % (1 << 60)) * 64 + gidx
        self.rows = np.array(rows, np.int64)
        self.asset_ids = [assets[r].asset_id for r in rows]
        self.device_ids = [assets[r].device_id for r in rows]
        n = self.n = len(rows)
        S = len(pm.sensors)
        fms = pm.failure_modes
        M = len(fms)
        self.modes = [fm.mode for fm in fms]
        self.predictable = np.array([fm.predictable for fm in fms])
        self.idle = pm.sensor_param("idle")
        self.run0 = pm.sensor_param("run0")
        self.slope = pm.sensor_param("load_slope")
        self.amb = pm.sensor_param("amb_slope")
        self.sd = pm.sensor_param("noise_sd")
        self.lo = pm.sensor_param("lo")
        self.hi = pm.sensor_param("hi")
        self.tau = pm.sensor_param("tau_s")
        self.thermal = np.nonzero(self.tau > 0)[0]
        eff = pm.effect_matrix()
        spike = np.zeros_like(eff)
        for m, fm in enumerate(fms):
            for name in fm.spike_sensors:
                s = pm.sensor_index(name)
                spike[m, s], eff[m, s] = eff[m, s], 0.0
        self.spike_modes = [m for m in range(M) if spike[m].any()]
        self.shape = np.array([fm.shape for fm in fms], np.float64)
        self.mttr = np.array([fm.mttr_h for fm in fms], np.float64)
        site = [sites[assets[r].site_id] for r in rows]
        # per asset
        self.pattern = np.array([PATTERNS.index(assets[r].pattern) for r in rows])
        self.tz = np.array([s.tz_h for s in site])
        self.region = [s.region for s in site]
        self.site_temp = np.array([s.mean_temp for s in site])
        self.site_repair = np.array([s.repair_factor for s in site])
        self.site_parts = np.array([s.parts_unavailable_p for s in site])
        self.response_h = np.array([TIER_RESPONSE_H[assets[r].tier] for r in rows])
        self.install_t = np.array([
            datetime(*assets[r].install_date.timetuple()[:3], tzinfo=timezone.utc).timestamp()
            for r in rows])
        self.base_load = rng.uniform(0.6, 0.95, n)
        self.peak_h = rng.uniform(11, 16, n)
        self.wander_p = rng.uniform(3 * HOUR, 9 * HOUR, (2, n)) * np.array([[1], [8]])
        self.wander_phi = rng.uniform(0, 2 * np.pi, (3, n))
        self.weather_p = rng.uniform(2.5 * DAY, 5 * DAY, n)
        self.mag = rng.lognormal(0.0, 0.2, (n, M))  # severity of each mode on this asset
        self.effmag = (self.mag[:, :, None] * eff[None]).astype(np.float32)  # [n, M, S]
        self.spikemag = (self.mag[:, :, None] * spike[None]).astype(np.float32)
        frailty = rng.lognormal(0.0, 0.35, (n, M))
        base = np.array([fm.onset_per_year for fm in fms]) * spec.hazard_scale / YEAR
        self.rate_s = frailty * base[None]  # onset hazard per second (new asset, nominal)
        self.ttf_med = np.array([fm.ttf_median_h for fm in fms]) * HOUR
        self.ttf_sig = np.array([fm.ttf_sigma for fm in fms])
        self.H = np.zeros((n, M))
        self.E = rng.exponential(1.0, (n, M))
        self.active = np.zeros((n, M), bool)
        self.onset_t = np.full((n, M), np.inf)
        self.prog = np.zeros((n, M))
        self.speed = np.zeros((n, M))  # progress per running second at nominal load
        self.down_from = np.full(n, np.inf)
        self.down_until = np.full(n, -np.inf)
        self.sudden_at = np.full(n, np.inf)  # injected sudden failures
        self.last_pm = np.zeros(n)
        self.next_pm = np.zeros(n)
        self.therm = None  # [n, n_thermal] lagged temperatures
        self.prev_run = None  # [n] running at the last step (start/stop transitions)
        self.run_parts: list[np.ndarray] = []
        self.sf_H = np.zeros(n)
        self.sf_E = rng.exponential(1.0, n)
        self.faults: list[_SensorFault] = []

    def step_rng(self, t_us: int) -> np.random.Generator:
        return np.random.Generator(np.random.Philox(key=self._philox_key,
                                                    counter=[0, int(t_us), 0, 0]))

    def draw_speed(self, i: int, m: int, rng: np.random.Generator) -> float:
        return 1.0 / (self.ttf_med[m] * rng.lognormal(0.0, self.ttf_sig[m]))

    def conditions(self, t: np.ndarray):
        """Load, ambient temperature [T, n] (float64) and scheduled-running [T, n] (bool)."""
        tt = t[:, None]
        th = tt / HOUR + self.tz[None]
        hod = th % 24.0
        dow = ((th // 24.0) + 3.0) % 7.0  # 1970-01-01 was a Thursday; Monday = 0
        weekend = dow >= 5.0
        daily = np.cos(2 * np.pi * (hod - self.peak_h) / 24.0)
        ph = self.wander_phi
        wander = (0.06 * np.sin(2 * np.pi * tt / self.wander_p[0] + ph[0])
                  + 0.05 * np.sin(2 * np.pi * tt / self.wander_p[1] + ph[1]))
        doy = (tt / DAY) % 365.25
        amb = (self.site_temp + 9.0 * np.cos(2 * np.pi * (doy - 200.0) / 365.25)
               + 4.0 * np.cos(2 * np.pi * (hod - 15.0) / 24.0)
               + 2.5 * np.sin(2 * np.pi * tt / self.weather_p + ph[2]))
        cont = self.base_load * (0.9 + 0.08 * daily - 0.08 * weekend) + wander
        shift = self.base_load * (0.92 + 0.08 * daily) + wander
        comfort = 0.25 + 0.65 * np.clip((amb - 8.0) / 22.0, 0.0, 1.0) + 0.1 * daily + wander
        p = self.pattern
        load = np.where(p == 0, cont, np.where(p == 1, shift, comfort))
        sched = np.where(p == 0, True,
                         np.where(p == 1, (hod >= 6) & (hod < 22) & ~weekend,
                                  (hod >= 6) & (hod < 20) & (dow < 6)))
        return np.clip(load, 0.15, 1.05), amb, sched


class Fleet:
    """The simulated fleet; see the module docstring.  ``Fleet(FleetSpec(...))``."""

    def __init__(self, spec: FleetSpec):
        self.spec = spec
        self.rng = np.random.Generator(np.random.PCG64(spec.seed))
        rng = self.rng
        self.start = spec.start.astimezone(timezone.utc)
        self._set_clock(int(round(self.start.timestamp() * 1e6)))
        self.ground_truth = GroundTruth()
        self.last_events: list[dict] = []
        self._actions: list[tuple] = []
        self._seq = 0
        p = spec.id_prefix
        n_cust = spec.n_customers or max(1, spec.n_assets // 50)
        self.customers = [CustomerSpec(f"{p}-c{j:03d}", f"Customer {j:03d} ({p})")
                          for j in range(n_cust)]
        self.sites: dict[str, SiteSpec] = {}
        for c in self.customers:
            for k in range(spec.sites_per_customer):
                sid = f"{c.customer_id}-s{k}"
                self.sites[sid] = SiteSpec(
                    sid, c.customer_id, f"{c.name} site {k}", REGIONS[rng.integers(len(REGIONS))],
                    tz_h=float(rng.integers(-2, 3)), mean_temp=float(rng.uniform(6, 20)),
                    repair_factor=float(rng.lognormal(0, 0.25)),
                    parts_unavailable_p=float(rng.uniform(0.05, 0.3)))
        site_ids = list(self.sites)
        self.site_coords = place_sites(site_ids, [self.sites[s].region for s in site_ids], spec.seed)
        self.technicians = roster(REGIONS, spec.seed, prefix=p)
        if isinstance(spec.models, dict):
            model_ids = list(spec.models)
            w = np.array([spec.models[m] for m in model_ids], float)
        else:
            model_ids = list(spec.models) if spec.models is not None else list(CATALOG)
            w = np.ones(len(model_ids))
        w = w / w.sum()
        self.assets: list[AssetSpec] = []
        for i in range(spec.n_assets):
            mid = model_ids[rng.choice(len(model_ids), p=w)]
            site = self.sites[site_ids[rng.integers(len(site_ids))]]
            pattern = "comfort" if CATALOG[mid].category == "chiller" else (
                "continuous" if rng.random() < 0.5 else "two_shift")
            installed = (self.start - timedelta(days=float(rng.uniform(30, 12 * 365)))).date()
            self.assets.append(AssetSpec(
                asset_id=f"{p}-a{i:05d}", device_id=f"{p}-d{i:05d}", serial=f"{p.upper()}-SN{i:07d}",
                model_id=mid, site_id=site.site_id, customer_id=site.customer_id,
                tier=TIERS[rng.choice(4, p=TIER_P)], install_date=installed, pattern=pattern,
                warranty_end=installed + timedelta(days=730)))
        self._index = {a.asset_id: i for i, a in enumerate(self.assets)}
        self._dev_index = {a.device_id: i for i, a in enumerate(self.assets)}
        self.groups: dict[str, _Group] = {}
        for mid in CATALOG:
            rows = [i for i, a in enumerate(self.assets) if a.model_id == mid]
            if rows:
                self.groups[mid] = _Group(CATALOG[mid], rows, self.assets, self.sites, spec, rng,
                                          gidx=list(CATALOG).index(mid))
        self._where = {}
        for mid, g in self.groups.items():
            for i, r in enumerate(g.rows):
                self._where[int(r)] = (mid, i)
        self.ground_truth.add(self._t, "", "", "inventory", None,
                              asset_ids=[a.asset_id for a in self.assets], seed=spec.seed,
                              n_assets=spec.n_assets)
        self._init_state()

    # ------------------------------------------------------------------ set-up
    def _init_state(self):
        rng, t0, spec = self.rng, self._t, self.spec
        for g in self.groups.values():
            interval = spec.pm_interval_days * DAY
            g.last_pm = t0 - rng.uniform(0, interval, g.n)
            g.next_pm = g.last_pm + interval * rng.uniform(0.9, 1.1, g.n)
            for i in range(g.n):
                self._schedule(float(g.next_pm[i]), "pm", g.pm.model_id, i)
            if not spec.pre_existing:
                continue
            # steady state: P(degrading now) = hazard x mean time from onset to failure
            fac = self._hazard_factor(g, t0, np.full(g.n, 0.75))
            pr = g.rate_s * fac[:, None] * g.ttf_med[None] * 1.2
            draw = rng.random(pr.shape) < pr
            for i, m in zip(*np.nonzero(draw & g.predictable[None])):
                speed = g.draw_speed(i, m, rng)
                p0 = float(rng.uniform(0.0, 0.9))
                self._start_degradation(g, int(i), int(m), t0 - p0 / speed / 0.8, speed,
                                        prog=p0, pre_existing=True)

    def _hazard_factor(self, g: _Group, t, load: np.ndarray) -> np.ndarray:
        """Onset hazard multiplier: age (wear-out), load, time since preventive maintenance.
        ``t``: scalar or [T, 1]; ``load``: [n] or [T, n]."""
        age_y = np.maximum(t - g.install_t, 0) / YEAR
        since_pm_y = np.clip((t - g.last_pm) / YEAR, 0, 2)
        return ((1 + age_y / 6.0) ** 1.5 * ((0.4 + load) / 1.15) ** 2
                * (1 + 0.75 * since_pm_y))

    def _start_degradation(self, g: _Group, i: int, m: int, onset: float, speed: float,
                           prog: float = 0.0, pre_existing: bool = False, injected=False,
                           log_only: bool = False):
        if not log_only:
            g.active[i, m] = True
            g.onset_t[i, m] = onset
            g.prog[i, m] = prog
            g.speed[i, m] = speed
        extra = {"pre_existing": True, "progress": round(prog, 4)} if pre_existing else {}
        if injected:
            extra["injected"] = True
        self._log(onset, g, i, "onset", g.modes[m], ttf_h=round(1.0 / speed / HOUR, 2),
                  severity=round(float(g.mag[i, m]), 3), **extra)

    def _set_clock(self, t_us: int) -> None:
        self._t_us = int(t_us)
        self._t = self._t_us / 1e6

    # ------------------------------------------------------------------ public API
    @property
    def clock(self) -> datetime:
        return _EPOCH + timedelta(microseconds=self._t_us)

    def asset(self, asset_id: str) -> AssetSpec:
        try:
            return self.assets[self._index[asset_id]]
        except KeyError:
            raise KeyError(f"no asset {asset_id!r} in this fleet") from None

    def asset_of_device(self, device_id: str) -> AssetSpec:
        return self.assets[self._dev_index[device_id]]

    def device_ids(self, model_id: str | None = None) -> list[str]:
        if model_id is None:
            return [a.device_id for a in self.assets]
        return list(self.groups[model_id].device_ids) if model_id in self.groups else []

    def is_down(self, asset_id: str, at: datetime | None = None) -> bool:
        g, i = self._locate(asset_id)
        t = self._t if at is None else at.timestamp()
        return bool(g.down_from[i] <= t < g.down_until[i])

    def health(self, asset_id: str) -> dict[str, float]:
        """Current damage (0 = as new, 1 = failed) per predictable mode (the truth)."""
        g, i = self._locate(asset_id)
        return {g.modes[m]: float(np.clip(g.prog[i, m], 0, 1) ** g.shape[m])
                for m in range(len(g.modes)) if g.predictable[m]}

    def step(self, t0: datetime | None, n_steps: int, dt_s: float) -> dict:
        """Advance ``n_steps`` of ``dt_s`` seconds from ``t0`` (None: the fleet clock).

        Returns ``{model_id: (times datetime64[ns][n_steps], device_ids, float32[n_steps,
        n_devices, n_sensors])}``, NaN = value missing.  ``self.last_events`` holds the
        ground-truth events that happened in this period; ``self.last_transitions[model_id]``
        the machines that started or stopped: ``(step index, device index, running)``;
        ``self.last_device_faults`` the fault codes devices reported (overcurrent trips of
        electrical faults: ``{"t", "device_id", "code", "detail"}``).
        """
        if n_steps < 1 or not dt_s > 0:
            raise ValueError("n_steps must be >= 1 and dt_s > 0")
        if t0 is not None and abs(t0.timestamp() - self._t) > 1e-3:
            raise ValueError(f"the fleet clock is at {self.clock.isoformat()}; step() continues "
                             f"from there (got t0={t0.isoformat()})")
        self.last_events = []
        self.last_transitions: dict[str, list[tuple[int, int, bool]]] = {}
        self.last_device_faults: list[dict] = []
        for g in self.groups.values():
            g.run_parts = []
            g.trips = []
        # the clock is kept in whole microseconds: no drift over millions of steps
        dt_us = int(round(dt_s * 1e6))
        if dt_us < 1:
            raise ValueError("dt_s must be at least one microsecond")
        dt_s = dt_us / 1e6
        # sub-blocks: at most MAX_BLOCK_S long (shorter than any response time, so whatever a
        # failure schedules falls in a later sub-block) and BLOCK_READINGS readings
        per_block = max(1, min(BLOCK_READINGS // max(1, len(self.assets)),
                               int(MAX_BLOCK_S // dt_s)))
        parts: dict[str, list[np.ndarray]] = {mid: [] for mid in self.groups}
        t0_us = self._t_us
        done = 0
        while done < n_steps:
            self._run_actions(self._t)
            k = min(per_block, n_steps - done)
            if self._actions:      # end the sub-block before the next scheduled action
                ta = self._actions[0][0]
                j = max(1, int(math.ceil((ta * 1e6 - self._t_us) / dt_us)) - 1)
                while j < k and (self._t_us + j * dt_us) / 1e6 < ta:
                    j += 1
                while j > 1 and (self._t_us + (j - 1) * dt_us) / 1e6 >= ta:
                    j -= 1
                k = min(k, j)
            t_us = self._t_us + dt_us * np.arange(k, dtype=np.int64)
            end_us = self._t_us + dt_us * k
            for mid, g in self.groups.items():
                parts[mid].append(self._step_group(g, t_us, dt_s))
            self._set_clock(end_us)
            done += k
        times = (t0_us + dt_us * np.arange(n_steps, dtype=np.int64)).astype(
            "datetime64[us]").astype("datetime64[ns]")
        out = {}
        for mid, g in self.groups.items():
            vals = parts[mid][0] if len(parts[mid]) == 1 else np.concatenate(parts[mid], axis=0)
            out[mid] = (times, g.device_ids, vals)
            run = g.run_parts[0] if len(g.run_parts) == 1 else np.concatenate(g.run_parts)
            prev = np.vstack([g.prev_run[None] if g.prev_run is not None else run[:1], run[:-1]])
            j, i = np.nonzero(run != prev)
            self.last_transitions[mid] = list(zip(j.tolist(), i.tolist(), run[j, i].tolist()))
            g.prev_run = run[-1].copy()
            for t_us, i, mode in g.trips:
                self.last_device_faults.append({
                    "t": rfc3339(t_us / 1e6), "device_id": g.device_ids[i], "code": TRIP_CODE,
                    "detail": {"reason": "overcurrent trip"}})   # the drive knows no more
        return out

    def inject(self, asset_id: str, mode: str, at: datetime | None = None,
               rate: float | None = None) -> None:
        """Start a degradation of ``mode`` on an asset (drills, tests, demos).

        ``at``: onset time (default: the fleet clock; later times are allowed);
        ``rate``: fraction of life consumed per running hour at nominal load (1 / time to
        failure in hours); default drawn from the mode's distribution.  ``mode="sudden"``
        fails the asset at ``at``.
        """
        g, i = self._locate(asset_id)
        m = self._mode_index(g, mode)
        t = self._t if at is None else at.timestamp()
        if t < self._t - 1e-3:
            raise ValueError("inject: `at` is before the fleet clock")
        if not g.predictable[m]:
            g.sudden_at[i] = min(g.sudden_at[i], t)
            return
        if g.active[i, m]:
            raise ValueError(f"{asset_id} is already degrading in {mode}")
        if rate is not None and not rate > 0:
            raise ValueError("rate must be > 0 (1 / hours to failure)")
        speed = rate / HOUR if rate is not None else g.draw_speed(i, m, g.ev_rng[i])
        self._start_degradation(g, i, m, t, speed, injected=True)

    def apply_maintenance(self, asset_id: str, mode: str | None, at: datetime | None = None,
                          kind: str = "predictive", order_id: int | None = None) -> dict:
        """A technician acts on an order at ``at`` (default: the fleet clock).

        ``predictive``: repairs ``mode`` (its degradation, if any, is removed) in a planned
        stop; ``preventive``: service of the whole machine, partly restoring every mode.
        Returns the ground-truth ``maintenance`` event (``restored``: whether a degradation of
        that mode was under way and is now gone).
        """
        if kind not in ("predictive", "preventive"):
            raise ValueError("kind must be 'predictive' or 'preventive'")
        g, i = self._locate(asset_id)
        t = self._t if at is None else at.timestamp()
        if t < self._t - 1e-3:
            raise ValueError("apply_maintenance: `at` is before the fleet clock")
        if g.down_from[i] <= t < g.down_until[i]:
            raise ValueError(f"{asset_id} is down (failed or in maintenance) until "
                             f"{datetime.fromtimestamp(g.down_until[i], timezone.utc).isoformat()}")
        if kind == "preventive":
            return self._preventive(g, i, t, order_id)
        m = self._mode_index(g, mode)
        found = self._as_found(g, i, t)
        was = bool(g.active[i, m] and g.onset_t[i, m] <= t)
        damage = float(np.clip(g.prog[i, m], 0, 1) ** g.shape[m]) if was else 0.0
        g.active[i, m] = False
        g.prog[i, m] = 0.0
        g.onset_t[i, m] = np.inf
        g.H[i, m] = 0.0
        g.E[i, m] = g.ev_rng[i].exponential(1.0)
        noise = float(g.ev_rng[i].lognormal(0, 0.25))
        tech, factor, drawn = visit(self.technicians[g.region[i]], g.tech_rng[i], t, float(g.tz[i]))
        dur = g.mttr[m] * 0.6 * g.pm.repair_factor * g.site_repair[i] * noise * factor
        ev = self._log(t, g, i, "maintenance", mode, kind=kind, restored=was,
                       damage=round(damage, 4), order_id=order_id)
        self._planned_stop(g, i, t, dur * HOUR, mode, kind, order_id, visit_detail={
            **record(tech, True), "as_found": found, "drawn": {"site_factor": round(float(g.site_repair[i]), 4),
                                            "model_factor": g.pm.repair_factor, "noise": round(noise, 4),
                                            **drawn}})
        return ev

    # ------------------------------------------------------------------ internals
    def _locate(self, asset_id: str) -> tuple[_Group, int]:
        mid, i = self._where[self._index[asset_id]] if asset_id in self._index else (None, None)
        if mid is None:
            raise KeyError(f"no asset {asset_id!r} in this fleet")
        return self.groups[mid], i

    @staticmethod
    def _mode_index(g: _Group, mode: str) -> int:
        try:
            return g.modes.index(mode)
        except ValueError:
            raise ValueError(f"{g.pm.model_id} has no failure mode {mode!r}; "
                             f"modes: {g.modes}") from None

    def _log(self, t: float, g: _Group, i: int, event: str, mode: str | None, **kw) -> dict:
        kw = {k: v for k, v in kw.items() if v is not None}
        ev = self.ground_truth.add(t, g.asset_ids[i], g.device_ids[i], event, mode, **kw)
        self.last_events.append(ev)
        return ev

    def _schedule(self, t: float, *action):
        heapq.heappush(self._actions, (t, self._seq, action))
        self._seq += 1

    def _planned_stop(self, g, i, t, dur_s, mode, kind, order_id=None, visit_detail=None):
        g.down_from[i], g.down_until[i] = t, t + dur_s
        self._log(t, g, i, "downtime_start", mode, planned=True)
        self._log(t, g, i, "repair_start", mode, kind=kind, order_id=order_id)
        self._schedule(t + dur_s, "repair_end", g.pm.model_id, i, mode, kind, True,
                       {"duration_h": round(dur_s / HOUR, 3), "order_id": order_id,
                        "parts_delay_h": 0.0, **(visit_detail or {})})

    def _true_grade(self, g: _Group, i: int, t: float, m: int) -> int:
        """Index in :data:`GRADES` of mode ``m``'s condition (the truth, before any misgrading)."""
        if not (g.predictable[m] and g.active[i, m] and g.onset_t[i, m] <= t):
            return 0
        damage = float(np.clip(g.prog[i, m], 0, 1) ** g.shape[m])
        return int(np.searchsorted(GRADE_BANDS, damage, side="right"))

    def _as_found(self, g: _Group, i: int, t: float, failed: int | None = None) -> dict[str, str]:
        """What a technician reports for every mode of asset ``i`` at ``t`` (before working on it):
        the grade of :data:`GRADE_BANDS` (``failed`` for the mode that failed), misgraded by one
        step with chance :data:`MISGRADE_P` per mode."""
        out = {}
        rng = g.grade_rng[i]
        for m, mode in enumerate(g.modes):
            k = len(GRADES) - 1 if m == failed else self._true_grade(g, i, t, m)
            if rng.random() < MISGRADE_P:
                k = min(max(k + (1 if rng.random() < 0.5 else -1), 0), len(GRADES) - 1)
            out[mode] = GRADES[k]
        return out

    def _restore_found(self, g: _Group, i: int, mode: str | None, as_found: dict) -> list[str]:
        """At the end of a visit the technician also fixes every other mode he found ``degraded``
        (or worse): its degradation, if any, is removed, as the platform assumes when it resets
        the asset on any repair. Returns the modes restored (the truth: a degradation was gone)."""
        restored = []
        for m, name in enumerate(g.modes):
            if name == mode or GRADES.index(as_found.get(name, "good")) < GRADES.index("degraded"):
                continue
            if g.active[i, m]:
                restored.append(name)
                self._reset_mode(g, i, m)
        return restored

    @staticmethod
    def _reset_mode(g: _Group, i: int, m: int) -> None:
        g.active[i, m] = False
        g.prog[i, m] = 0.0
        g.onset_t[i, m] = np.inf
        g.H[i, m] = 0.0
        g.E[i, m] = g.ev_rng[i].exponential(1.0)

    def _preventive(self, g: _Group, i: int, t: float, order_id=None) -> dict:
        cleared, reduced = [], []
        found = self._as_found(g, i, t)
        for m, mode in enumerate(g.modes):
            if not (g.predictable[m] and g.active[i, m] and g.onset_t[i, m] <= t):
                continue
            g.prog[i, m] *= PM_KEEP.get(mode, 1.0)
            if g.prog[i, m] < 0.05:
                g.active[i, m] = False
                g.prog[i, m] = 0.0
                g.onset_t[i, m] = np.inf
                g.H[i, m] = 0.0
                g.E[i, m] = g.ev_rng[i].exponential(1.0)
                cleared.append(mode)
            else:
                reduced.append(mode)
        g.last_pm[i] = t
        g.next_pm[i] = t + self.spec.pm_interval_days * DAY * g.ev_rng[i].uniform(0.9, 1.1)
        self._schedule(float(g.next_pm[i]), "pm", g.pm.model_id, i)
        ev = self._log(t, g, i, "maintenance", None, kind="preventive", cleared=cleared,
                       reduced=reduced, order_id=order_id)
        self._planned_stop(g, i, t, 3.0 * HOUR * g.site_repair[i], None, "preventive", order_id,
                           visit_detail={"as_found": found})
        return ev

    def _run_actions(self, t_now: float):
        """Everything scheduled at or before ``t_now`` (the next step's time)."""
        while self._actions and self._actions[0][0] <= t_now:
            t, _, action = heapq.heappop(self._actions)
            kind = action[0]
            if kind == "repair_start":
                _, mid, i, mode, rkind, resp_h = action
                self._log(t, self.groups[mid], i, "repair_start", mode, kind=rkind,
                          response_h=round(resp_h, 3))
            elif kind == "repair_end":
                _, mid, i, mode, rkind, planned, detail = action
                g = self.groups[mid]
                if rkind == "corrective" and mode in g.modes:
                    self._reset_mode(g, i, g.modes.index(mode))
                restored = self._restore_found(g, i, mode, detail.get("as_found", {}))
                self._log(t, g, i, "repair_end", mode, kind=rkind, restored=restored or None,
                          **{k: v for k, v in detail.items() if k != "downtime_h"})
                self._log(t, g, i, "downtime_end", mode, planned=planned,
                          duration_h=round((t - g.down_from[i]) / HOUR, 3))
            elif kind == "pm":       # scheduled preventive maintenance (postponed while down)
                _, mid, i = action
                g = self.groups[mid]
                if t != g.next_pm[i]:
                    continue                             # superseded by a later plan
                if g.down_from[i] <= t < g.down_until[i]:
                    g.next_pm[i] = g.down_until[i] + DAY
                    self._schedule(float(g.next_pm[i]), "pm", mid, i)
                    continue
                self._preventive(g, int(i), float(t))

    def _fail(self, g: _Group, i: int, t: float, m: int):
        rng = g.ev_rng[i]
        mode = g.modes[m]
        resp_h = max(MIN_RESPONSE_H, g.response_h[i] * rng.uniform(0.25, 1.0))
        parts_h = float(rng.uniform(12, 96)) if rng.random() < g.site_parts[i] else 0.0
        noise = float(rng.lognormal(0, 0.35))
        # the technician of the asset's region who comes, and when the work starts
        tech, factor, drawn = visit(self.technicians[g.region[i]], g.tech_rng[i], t + resp_h * HOUR,
                                    float(g.tz[i]))
        rep_h = g.mttr[m] * g.pm.repair_factor * g.site_repair[i] * noise * factor + parts_h
        detail = {"duration_h": round(rep_h, 3), "parts_delay_h": round(parts_h, 3),
                  **record(tech, parts_h == 0.0), "as_found": self._as_found(g, i, t, failed=m),
                  "drawn": {"site_factor": round(float(g.site_repair[i]), 4),
                            "model_factor": g.pm.repair_factor, "noise": round(noise, 4), **drawn}}
        g.down_from[i] = t
        g.down_until[i] = t + (resp_h + rep_h) * HOUR
        self._log(t, g, i, "failure", mode)
        self._log(t, g, i, "downtime_start", mode, planned=False)
        self._schedule(t + resp_h * HOUR, "repair_start", g.pm.model_id, i, mode, "corrective",
                       resp_h)
        self._schedule(g.down_until[i], "repair_end", g.pm.model_id, i, mode, "corrective",
                       False, detail)

    def _step_group(self, g: _Group, t_us: np.ndarray, dt: float) -> np.ndarray:
        t = t_us / 1e6
        T, n = len(t), g.n
        t0 = float(t[0])
        gens = [g.step_rng(int(u)) for u in t_us]
        load, amb, sched = g.conditions(t)
        down = (t[:, None] >= g.down_from) & (t[:, None] < g.down_until)
        run = sched & ~down

        # -- hazards, step by step, against exponential budgets: first crossing per mode
        def hazard(run_):
            fac = self._hazard_factor(g, t[:, None], load) * run_ * dt        # [T, n]
            dH = g.rate_s[None] * fac[:, :, None]                              # [T, n, M]
            dH[:, g.active] = 0.0
            return dH

        def first_true(mask):                      # [T, ...] -> first index (T if none)
            return np.where(mask.any(0), mask.argmax(0), T)

        dH = hazard(run)
        cross = first_true(g.H[None] + np.cumsum(dH, axis=0) >= g.E[None])   # [n, M]
        sudden_m = int(np.nonzero(~g.predictable)[0][0]) if (~g.predictable).any() else -1
        onsets = [(int(i), int(m), int(cross[i, m])) for i, m in zip(*np.nonzero(cross < T))
                  if g.predictable[m]]
        new_onset = []
        for i, m, c in onsets:                     # tentative: dropped if a failure comes first
            if not g.active[i, m]:
                g.active[i, m] = True
                g.onset_t[i, m] = t[c]
                g.speed[i, m] = 0.0                # set when kept
                new_onset.append((i, m, c))

        # -- degradation progress and failures
        act = np.nonzero(g.active.any(1))[0]
        lf = ((0.5 + load) / 1.25)
        # (a degradation that starts in this block cannot also end in it: its speed is drawn
        # below, once it is known that no failure came first)

        def progress(run_):
            started = t[:, None, None] >= g.onset_t[act][None]
            inc = (dt * g.speed[act][None] * lf[:, act, None] * run_[:, act, None] * started)
            return g.prog[act][None] + np.cumsum(inc, axis=0)

        fail_idx = np.full(n, T)
        fail_m = np.full(n, -1)
        injected = np.zeros(n, bool)
        if sudden_m >= 0:
            fail_idx = cross[:, sudden_m].copy()
            fail_m[fail_idx < T] = sudden_m
            inj = g.sudden_at < t0 + dt * T
            if inj.any():
                ji = np.minimum(np.searchsorted(t, g.sudden_at[inj]), T - 1)
                better = ji < fail_idx[inj]
                idx = np.nonzero(inj)[0][better]
                fail_idx[idx] = ji[better]
                fail_m[idx] = sudden_m
                injected[idx] = True
        if len(act):
            prog_t = progress(run)
            pc = (prog_t >= 1.0) & g.active[act][None] & run[:, act, None]
            fp = first_true(pc.any(2))
            fm = pc[np.minimum(fp, T - 1), np.arange(len(act))].argmax(1)
            better = fp < fail_idx[act]
            fail_idx[act[better]] = fp[better]
            fail_m[act[better]] = fm[better]
        failed = np.nonzero(fail_idx < T)[0]
        # wear-out and random hazards act on running machines; an injected failure strikes
        # whenever it is due, unless the asset is already down
        fi = fail_idx[failed]
        failed = failed[run[fi, failed] | (injected[failed] & ~down[fi, failed])]
        g.sudden_at[injected & ~np.isin(np.arange(n), failed)] = np.inf   # struck a down asset
        for i, m, c in new_onset:                               # keep onsets before a failure
            if fail_idx[i] <= c or not run[c, i]:
                g.active[i, m] = False
                g.onset_t[i, m] = np.inf
                g.speed[i, m] = 0.0
            else:
                g.H[i, m] = 0.0
                g.speed[i, m] = g.draw_speed(i, m, g.ev_rng[i])
                self._start_degradation(g, i, m, float(t[c]), g.speed[i, m], log_only=True)
        for i in failed:
            m = int(fail_m[i])
            if m == sudden_m:
                g.sudden_at[i] = np.inf
                g.H[i, m] = 0.0
                g.E[i, m] = g.ev_rng[i].exponential(1.0)
            self._fail(g, int(i), float(t[fail_idx[i]]), m)
        if len(failed):
            down = (t[:, None] >= g.down_from) & (t[:, None] < g.down_until)
            run = sched & ~down
        # hazard accumulated over the steps the machines actually ran (modes that crossed
        # were reset at their crossing and accumulate nothing after it)
        dH = hazard(run)
        crossed = np.zeros_like(g.H, bool)
        for i, m, c in new_onset:
            crossed[i, m] = True
        if sudden_m >= 0:
            crossed[failed[fail_m[failed] == sudden_m], sudden_m] = True
        g.H = np.where(crossed | g.active, g.H, g.H + dH.sum(0))
        act = np.nonzero(g.active.any(1))[0]
        d = None
        if len(act):
            prog_t = np.minimum(progress(run), 1.0)
            g.prog[act] = prog_t[-1]
            d = (prog_t ** g.shape[None, None]).astype(np.float32)  # [T, k, M]

        g.run_parts.append(run)
        # -- per-step random draws, a fixed number per step (whatever the state), so that the
        # stream of a step does not depend on how the period was cut into calls
        S = len(g.sd)
        noise = np.empty((T, n, S), np.float32)
        u = np.empty((T, 4, n))
        for j, gen in enumerate(gens):
            gen.standard_normal((n, S), dtype=np.float32, out=noise[j])
            u[j] = gen.random((4, n))
        # -- sensor values
        r = run.astype(np.float32)[:, :, None]
        L = load.astype(np.float32)[:, :, None]
        A = amb.astype(np.float32)[:, :, None]
        X = g.idle + r * (g.run0 - g.idle + g.slope * L) + g.amb * A
        if d is not None:
            ra = r[:, act]
            X[:, act] += ra * np.einsum("tkm,kms->tks", d, g.effmag[act], optimize=True)
            for m in g.spike_modes:
                sub = np.nonzero(g.active[act, m])[0]
                if not len(sub):
                    continue
                dm = d[:, sub, m]
                lam = (0.1 + 6.0 * dm * dm) / HOUR  # spikes per hour
                started = t[:, None] >= g.onset_t[act[sub], m][None]
                spikes = (u[:, 0, act[sub]] < -np.expm1(-lam * dt)) & started
                size = spikes * (0.3 + 0.7 * dm) * (0.5 + 0.5 * u[:, 1, act[sub]])
                X[:, act[sub]] += (ra[:, sub] * size[:, :, None]).astype(np.float32) \
                    * g.spikemag[act[sub], m][None]
                # the drive trips on the large ones and logs an overcurrent fault code
                jt, kt = np.nonzero((size > TRIP_SIZE) & run[:, act[sub]])
                for j, k in zip(jt.tolist(), kt.tolist()):
                    g.trips.append((int(t_us[j]), int(act[sub][k]), g.modes[m]))
        if len(g.thermal):
            a = (-np.expm1(-dt / g.tau[g.thermal])).astype(np.float64)
            if g.therm is None:
                g.therm = X[0][:, g.thermal].astype(np.float64)
            for j, s in enumerate(g.thermal):
                y, zf = lfilter([a[j]], [1.0, -(1.0 - a[j])], X[:, :, s], axis=0,
                                zi=((1.0 - a[j]) * g.therm[:, j])[None])
                X[:, :, s] = y
                g.therm[:, j] = y[-1]
        X += noise * g.sd
        np.clip(X, g.lo, g.hi, out=X)
        if self.spec.sensor_faults:
            self._sensor_faults(g, t, dt, X, u[:, 2:])
            for j, gen in enumerate(gens):           # isolated missing values
                k = gen.binomial(n * S, DROPOUT_P)
                if k:
                    X[j].reshape(-1)[gen.integers(0, n * S, k)] = np.nan
        return X

    def _sensor_faults(self, g: _Group, t: np.ndarray, dt: float, X: np.ndarray,
                       u: np.ndarray):
        T = len(t)
        rate = SENSOR_FAULT_PER_YEAR / YEAR * dt                 # per step, per device
        c = np.ceil((g.sf_E - g.sf_H) / rate).astype(np.int64) - 1  # step of the crossing
        c = np.maximum(c, 0)
        hit = np.nonzero(c < T)[0]
        g.sf_H += rate * T
        S = X.shape[2]
        for i in hit:
            rng = g.ev_rng[i]
            start = float(t[c[i]])
            kind = SENSOR_FAULTS[rng.integers(3)]
            s = int(rng.integers(S))
            end = start + SENSOR_FAULT_MEDIAN_H[kind] * HOUR * rng.lognormal(0, 0.6)
            g.faults.append(_SensorFault(int(i), s, kind, start, end))
            g.sf_H[i] = rate * (T - 1 - c[i])
            g.sf_E[i] = rng.exponential(1.0)
            self._log(start, g, int(i), "sensor_fault", None, sensor=g.pm.sensors[s].name,
                      kind=kind, until=_iso(end))
        g.faults.sort(key=lambda f: (f.start, f.dev, f.sensor))
        keep = []
        t_end = float(t[-1]) + dt
        for f in g.faults:
            mask = (t >= f.start) & (t < f.end)
            if mask.any():
                if f.kind == "dropout":
                    X[mask, f.dev, f.sensor] = np.nan
                elif f.kind == "stuck":
                    if math.isnan(f.stuck):
                        f.stuck = float(X[np.argmax(mask), f.dev, f.sensor])
                    X[mask, f.dev, f.sensor] = f.stuck
                else:
                    sp = mask & (u[:, 0, f.dev] < 0.08)
                    if sp.any():
                        width = g.hi[f.sensor] - g.lo[f.sensor]
                        sign = np.where(u[sp, 1, f.dev] < 0.5, -1.0, 1.0)
                        X[sp, f.dev, f.sensor] = np.clip(
                            X[sp, f.dev, f.sensor] + sign * 0.25 * width,
                            g.lo[f.sensor], g.hi[f.sensor])
            if f.end >= t_end:
                keep.append(f)
        g.faults = keep


def _iso(t: float) -> str:
    from simulator.ground_truth import rfc3339

    return rfc3339(t)
