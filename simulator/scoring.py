"""Score service orders against the ground truth, and the fixed-threshold baseline.

An *order* is ``(asset_id, mode, opened_at)``.  For every failure of a predictable mode in
``[start, end]`` the orders for that asset and mode opened before it and after the previous
failure of that mode was repaired are its detections (such an order is still open when the
failure comes: only a repair closes it); the failure is *caught* when one of them was opened
at least ``lead_h`` before it.  A degradation that a
predictive maintenance removed before it failed (the platform's orders acting on the fleet)
counts as caught when an order for it preceded the maintenance.  An order is *true* when a
failure of that mode on that asset followed within the horizon, or when a degradation of that
mode was under way (onset to repair end) when it was opened.

>>> from datetime import datetime, timedelta, timezone
>>> from simulator.ground_truth import GroundTruth
>>> t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
>>> gt = GroundTruth()
>>> _ = gt.add(t0, "", "", "inventory", asset_ids=["a1", "a2"])
>>> _ = gt.add(t0 + timedelta(days=1), "a1", "d1", "onset", "bearing_wear")
>>> _ = gt.add(t0 + timedelta(days=9), "a1", "d1", "failure", "bearing_wear")
>>> orders = [("a1", "bearing_wear", t0 + timedelta(days=6)),
...           ("a2", "fouling", t0 + timedelta(days=3))]
>>> s = score_orders(orders, gt, start=t0, end=t0 + timedelta(days=30))
>>> s["recall_24h"], s["precision"], s["median_lead_time_h"]
(1.0, 0.5, 72.0)
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta

import numpy as np

from simulator.catalog import CATALOG, ProductModel
from simulator.ground_truth import GroundTruth, parse_time

Order = tuple[str, str, datetime]
SUDDEN_MODES = {fm.mode for pm in CATALOG.values() for fm in pm.failure_modes
                if not fm.predictable}


def _orders(orders: Iterable) -> list[Order]:
    out = []
    for o in orders:
        if isinstance(o, Mapping):
            o = (o["asset_id"], o["mode"], o["opened_at"])
        a, m, t = o
        out.append((str(a), str(m), parse_time(t)))
    return out


def score_orders(orders: Iterable, ground_truth: GroundTruth, horizon_h: float = 336.0,
                 lead_h: float = 24.0, start: datetime | None = None,
                 end: datetime | None = None, n_assets: int | None = None) -> dict:
    """Recall at ``lead_h``, precision, lead times and false orders per 100 asset-months."""
    if horizon_h <= 0 or lead_h < 0 or lead_h > horizon_h:
        raise ValueError("need 0 <= lead_h <= horizon_h and horizon_h > 0")
    evs = ground_truth.sorted_events()
    times = [parse_time(e["t"]) for e in evs if e["event"] != "inventory"]
    inv = [parse_time(e["t"]) for e in evs if e["event"] == "inventory"]
    start = parse_time(start) if start else (inv[0] if inv else min(times) if times else None)
    end = parse_time(end) if end else (max(times + inv) if times or inv else None)
    orders = [o for o in _orders(orders) if start is None or start <= o[2] <= end]
    n_assets = n_assets or len(ground_truth.asset_ids) or 1
    horizon, lead = timedelta(hours=horizon_h), timedelta(hours=lead_h)

    by_key: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for a, m, t in orders:
        by_key[(a, m)].append(t)
    for v in by_key.values():
        v.sort()

    # episodes of trouble per (asset, mode): [onset or failure, repair end]
    trouble: dict[tuple[str, str], list[list]] = defaultdict(list)
    last_fixed: dict[tuple[str, str], datetime] = {}
    failures: list[tuple[str, str, datetime, datetime | None]] = []  # + previous fix
    averted: list[tuple[str, str, datetime, datetime]] = []  # onset, maintenance time
    onset_open: dict[tuple[str, str], datetime] = {}
    sudden = []
    for e in evs:
        if e["event"] == "inventory":
            continue
        key, t = (e["asset_id"], e.get("mode")), parse_time(e["t"])
        ev = e["event"]
        if ev == "onset":
            onset_open[key] = t
            trouble[key].append([t, None])
        elif ev == "failure":
            if e.get("mode") in SUDDEN_MODES:
                sudden.append((key[0], t))
                continue
            if not trouble[key] or trouble[key][-1][1] is not None:
                trouble[key].append([t, None])
            onset_open.pop(key, None)
            failures.append((key[0], key[1], t, last_fixed.get(key)))
        elif ev == "repair_end" and e.get("kind") == "corrective":
            last_fixed[key] = t
            if trouble[key] and trouble[key][-1][1] is None:
                trouble[key][-1][1] = t
        if ev == "maintenance" or (ev == "repair_end" and e.get("restored")):
            # a maintenance, or any repair that also fixed the other modes it found degraded
            modes = ([e.get("mode")] if ev == "maintenance" and e.get("kind") == "predictive"
                     else e.get("cleared", []) + e.get("restored", []))
            for m in modes:
                k = (e["asset_id"], m)
                if k in onset_open:
                    averted.append((k[0], m, onset_open.pop(k), t))
                    if trouble[k] and trouble[k][-1][1] is None:
                        trouble[k][-1][1] = t
                last_fixed[k] = t

    def in_window(t):
        return start is None or start <= t <= end

    per_mode: dict[str, dict] = defaultdict(lambda: defaultdict(int))
    leads, caught_n, total_n = [], 0, 0
    for a, m, tf, fixed in failures:
        if not in_window(tf):
            continue
        cands = [t for t in by_key.get((a, m), []) if (fixed is None or t >= fixed) and t <= tf]
        pm = per_mode[m]
        pm["failures"] += 1
        total_n += 1
        if cands:
            pm["detected"] += 1
            lead_h_ = (tf - cands[0]).total_seconds() / 3600.0
            leads.append(lead_h_)
            if cands[0] <= tf - lead:
                pm["caught_24h"] += 1
                caught_n += 1
    for a, m, onset, tm in averted:
        if not in_window(tm):
            continue
        pm = per_mode[m]
        pm["averted"] += 1
        total_n += 1
        if any(onset - lead <= t <= tm for t in by_key.get((a, m), [])):
            pm["averted_by_order"] += 1
            caught_n += 1

    fail_at: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for a, m, tf, _ in failures:
        fail_at[(a, m)].append(tf)
    true_n = 0
    for a, m, t in orders:
        ok = any(s - timedelta(hours=1) <= t <= (e or end or t) for s, e in trouble.get((a, m), []))
        ok = ok or any(t < tf <= t + horizon for tf in fail_at.get((a, m), []))
        per_mode[m]["orders"] += 1
        if ok:
            true_n += 1
            per_mode[m]["true_orders"] += 1
    months = ((end - start).total_seconds() / (30.44 * 86400)) if start and end else 0.0
    false_n = len(orders) - true_n
    return {
        "recall_24h": (caught_n / total_n) if total_n else None,
        "precision": (true_n / len(orders)) if orders else None,
        "median_lead_time_h": float(np.median(leads)) if leads else None,
        "false_orders_per_100_asset_months": (100.0 * false_n / (n_assets * months)
                                              if months > 0 else None),
        "failures": sum(1 for f in failures if in_window(f[2])),
        "caught": caught_n,
        "orders": len(orders),
        "true_orders": true_n,
        "false_orders": false_n,
        "per_mode": {m: dict(v) for m, v in sorted(per_mode.items())},
        "sudden": {"failures": sum(1 for _, t in sudden if in_window(t))},
        "horizon_h": horizon_h,
        "lead_h": lead_h,
        "start": start.isoformat() if start else None,
        "end": end.isoformat() if end else None,
        "asset_months": n_assets * months,
    }


def alarm_modes(pm: ProductModel) -> dict[str, str]:
    """Sensor with a fixed alarm -> the failure mode its alarm is taken to indicate.

    >>> alarm_modes(CATALOG["PMP-200"])["vibration_rms"]
    'bearing_wear'
    """
    out = {}
    for s in pm.sensors:
        if s.alarm_hi is None and s.alarm_lo is None:
            continue
        named = [fm.mode for fm in pm.failure_modes if fm.alarm_sensor == s.name]
        if named:
            out[s.name] = named[0]
            continue
        width = s.hi - s.lo
        best = max(((abs(fm.effects.get(s.name, 0.0)) / width, fm.mode)
                    for fm in pm.failure_modes), default=(0.0, None))
        if best[0] > 0:
            out[s.name] = best[1]
    return out


def fixed_threshold_baseline(blocks: Iterable[dict], device_to_asset: Mapping | Callable | None
                             = None, persist: int = 3, rearm_h: float = 336.0,
                             running_rpm: float = 100.0) -> list[Order]:
    """Orders from fixed nameplate/standard alarm levels (the classic condition monitoring).

    ``blocks``: an iterable of :meth:`Fleet.step` results.  An alarm is raised when a sensor
    is beyond its level for ``persist`` consecutive readings while the machine runs
    (``speed_rpm`` above ``running_rpm``: low-limit alarms are interlocked with running);
    it opens an order for the mode the sensor stands for, at most one per asset and mode
    within ``rearm_h`` hours.
    """
    return fixed_threshold_baselines(blocks, device_to_asset, (1.0,), persist=persist,
                                     rearm_h=rearm_h, running_rpm=running_rpm)[1.0]


def fixed_threshold_baselines(blocks: Iterable[dict], device_to_asset: Mapping | Callable | None
                              = None, scales: Iterable[float] = (1.0,), persist: int = 3,
                              rearm_h: float = 336.0, running_rpm: float = 100.0
                              ) -> dict[float, list[Order]]:
    """:func:`fixed_threshold_baseline` for several alarm settings in one pass over ``blocks``.

    ``scale`` moves every alarm level relative to the sensor's nominal value:
    ``nominal + scale * (level - nominal)``; 1.0 is the nameplate level, below 1 alarms
    earlier (tighter), above 1 later. Sweeping it traces the baseline's recall against its
    precision, so it can be compared with another method at equal precision.
    """
    if device_to_asset is None:
        mapping: Callable = lambda d: d  # noqa: E731
    elif callable(device_to_asset):
        mapping = device_to_asset
    else:
        mapping = device_to_asset.__getitem__
    scales = tuple(float(x) for x in scales)
    if not scales or min(scales) <= 0:
        raise ValueError("scales must be positive")
    state: dict[str, dict] = {}
    last: dict[tuple[float, str, str], datetime] = {}
    orders: dict[float, list[Order]] = {x: [] for x in scales}
    rearm = np.timedelta64(int(rearm_h * 3600), "s")
    for block in blocks:
        for mid, (times, device_ids, values) in block.items():
            pm = CATALOG[mid]
            amap = alarm_modes(pm)
            st = state.get(mid)
            if st is None or st["ids"] != list(device_ids):
                sensors = list(amap)
                spec = [pm.sensors[pm.sensor_index(x)] for x in sensors]
                nominal = np.array([x.nominal for x in spec])
                hi = np.array([np.inf if x.alarm_hi is None else x.alarm_hi for x in spec])
                lo = np.array([-np.inf if x.alarm_lo is None else x.alarm_lo for x in spec])
                st = state[mid] = {
                    "ids": list(device_ids), "sensors": sensors,
                    "idx": np.array([pm.sensor_index(x) for x in sensors]),
                    "hi": {x: nominal + x * (hi - nominal) for x in scales},
                    "lo": {x: nominal + x * (lo - nominal) for x in scales},
                    "count": {x: np.zeros((len(device_ids), len(sensors)), np.int32) for x in scales},
                    "assets": [mapping(d) for d in device_ids],
                }
            v = values[:, :, st["idx"]]
            running = values[:, :, pm.sensor_index("speed_rpm")] > running_rpm
            for x in scales:
                with np.errstate(invalid="ignore"):
                    beyond = ((v > st["hi"][x]) | (v < st["lo"][x])) & running[:, :, None]
                cnt = st["count"][x]
                for j in range(len(times)):
                    cnt = np.where(beyond[j], cnt + 1, 0)
                    fire = np.argwhere(cnt == persist)
                    for i, k in fire:
                        a, m = st["assets"][i], amap[st["sensors"][k]]
                        t = times[j]
                        prev = last.get((x, a, m))
                        if prev is not None and t - prev < rearm:
                            continue
                        last[(x, a, m)] = t
                        orders[x].append((a, m, _to_datetime(t)))
                st["count"][x] = cnt
    return orders


def recall_at_precision(points: Iterable[Mapping], precision: float) -> Mapping | None:
    """Of scored operating points (``score_orders`` results, e.g. one per baseline setting),
    the one with the highest ``recall_24h`` whose ``precision`` is at least ``precision``
    (None if none reaches it): a method's recall "at equal precision".

    >>> pts = [{"recall_24h": 0.6, "precision": 0.7}, {"recall_24h": 0.4, "precision": 0.9},
    ...        {"recall_24h": 0.3, "precision": 0.95}]
    >>> recall_at_precision(pts, 0.88)["recall_24h"], recall_at_precision(pts, 0.99)
    (0.4, None)
    """
    ok = [pt for pt in points if pt.get("precision") is not None and pt["precision"] >= precision]
    return max(ok, key=lambda pt: (pt["recall_24h"], pt["precision"]), default=None)


def _to_datetime(t) -> datetime:
    from datetime import timezone

    us = int(np.datetime64(t, "us").astype(np.int64))
    return datetime.fromtimestamp(us / 1e6, tz=timezone.utc)
