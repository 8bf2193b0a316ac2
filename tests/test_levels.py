"""Alarm levels learned from history (real TimescaleDB): a small synthetic fleet whose bearings
wore out six times is replayed through the detection service's code; the level learned for that
mode is stored, the detection service loads it and opens its order at another time than with the
hand-tuned level; a mode with too few failures, and a model with too little history, keep the
defaults."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import numpy as np
import psycopg
import pytest
from hypothesis import assume, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from scipy import stats

from detection import levels
from detection.service import DetectionService, ServiceConfig
from tests.detection_fixtures import STEP, make_fleet, past_start, readings, write

DAY = 288                                  # readings a day (one every 5 minutes)
HISTORY, LIVE = 20 * DAY, 4 * DAY         # orders' outcomes are known 14 days on
FAIL_AT, REPAIRED_AT, DEGRADE_FOR = int(5.5 * DAY), int(5.6 * DAY), int(3.5 * DAY)
WORN = range(6)                            # assets whose bearing wears out in the history
CONFIG = ServiceConfig(history_days=1.0)   # normaliser fitted on the first day of the history


def _wear(V: np.ndarray, devices, first: int, last: int) -> None:
    """Bearing wear on ``devices`` from step ``first``, growing linearly to step ``last``."""
    k = np.clip(np.arange(V.shape[0]) - first, 0, None) / (last - first)
    for d in devices:
        V[:, d, 1] += 3.0 * k
        V[:, d, 2] += 12.0 * k


@pytest.fixture(scope="module")
def learned(settings):
    with psycopg.connect(settings.dsn) as conn:
        fleet = make_fleet(conn, "lvl", n_assets=10)
        start = past_start((HISTORY + LIVE) / DAY + 0.5)
        V = readings(10, start, HISTORY, degrade={}, seed=11)
        _wear(V, WORN, FAIL_AT - DEGRADE_FOR, FAIL_AT)
        V[REPAIRED_AT:, list(WORN)] = readings(10, start, HISTORY - REPAIRED_AT, degrade={}, seed=12)[:, list(WORN)]
        write(conn, fleet["devices"], start, V, outbox=False)
        for i in WORN:
            a = fleet["assets"][i]
            conn.execute("INSERT INTO downtime (asset_id, mode, started_at, ended_at) VALUES (%s, 'bearing_wear', %s, %s)",
                         (a, start + FAIL_AT * STEP, start + REPAIRED_AT * STEP))
            conn.execute("INSERT INTO repairs (asset_id, mode, started_at, finished_at) VALUES (%s, 'bearing_wear', %s, %s)",
                         (a, start + (FAIL_AT + 2) * STEP, start + REPAIRED_AT * STEP))
        conn.commit()
        replays = levels.replay(settings, CONFIG, [fleet["model"]])
        lv = levels.learn(replays[fleet["model"]], CONFIG)
        levels.save(conn, lv)
        conn.commit()
    fleet.update(start=start, levels=lv)
    return fleet


def test_learned_level_is_stored_and_too_few_failures_keep_the_default(learned, db):
    stored = levels.load(db, learned["model"])[learned["model"]]
    bw, el = stored.modes["bearing_wear"], stored.modes["electrical"]
    assert bw.learned and bw.failures == len(WORN)
    assert bw.caught == len(WORN) and bw.true_orders == bw.orders      # every wear caught a day ahead, no false order
    assert bw.level != pytest.approx(CONFIG.rate_full * CONFIG.risk_threshold)
    # electrical never failed: the hand-tuned level, and the default memory and mode score
    assert not el.learned and el.failures == 0
    assert el.level == pytest.approx(CONFIG.rate_full * CONFIG.risk_threshold)
    assert not stored.evidence_learned
    assert (stored.tau_h, stored.min_mode_score) == (CONFIG.tau_h, CONFIG.min_mode_score)


def test_the_service_loads_the_levels_and_they_change_its_decision(learned, settings, db):
    start, devices, assets = learned["start"], learned["devices"], learned["assets"]
    live0 = start + HISTORY * STEP
    V = readings(10, live0, LIVE, degrade={}, seed=13)
    _wear(V, [7], int(1.2 * DAY), LIVE + DAY)                 # a new wear, after the detectors' warm-up
    runs = {"frozen": DetectionService(settings, replace(CONFIG, learned_levels=False), name="lvl-frozen"),
            "learned": DetectionService(settings, CONFIG, name="lvl-learned")}
    for svc in runs.values():
        svc.start()
    write(db, devices, live0, V, outbox=True)
    opened = {}
    for name, svc in runs.items():
        svc.run(until_idle=True)
        st = svc.models[learned["model"]]
        m = st.info.modes.index("bearing_wear")
        level = st.rate_full[m] * CONFIG.risk_threshold
        expect = (learned["levels"].modes["bearing_wear"].level if name == "learned"
                  else CONFIG.rate_full * CONFIG.risk_threshold)
        assert level == pytest.approx(expect)
        svc.close()
        rows = db.execute("SELECT asset_id, mode, opened_at FROM service_orders WHERE kind = 'predictive' "
                          "AND asset_id = ANY(%s)", (assets,)).fetchall()
        assert [(a, m) for a, m, _ in rows] == [(assets[7], "bearing_wear")], name
        opened[name] = rows[0][2]
        db.execute("DELETE FROM service_orders WHERE asset_id = ANY(%s)", (assets,))
    # a higher level opens later, a lower one earlier
    later = learned["levels"].modes["bearing_wear"].level > CONFIG.rate_full * CONFIG.risk_threshold
    assert (opened["learned"] > opened["frozen"]) if later else (opened["learned"] < opened["frozen"])
    assert abs(opened["learned"] - opened["frozen"]) >= timedelta(hours=1)


def test_too_little_history_keeps_the_defaults(settings, db):
    fleet = make_fleet(db, "lvlfew", n_assets=4)
    start = past_start(3)
    V = readings(4, start, 2 * DAY, degrade={0: DAY}, seed=5)
    write(db, fleet["devices"], start, V, outbox=False)
    db.execute("INSERT INTO downtime (asset_id, mode, started_at) VALUES (%s, 'bearing_wear', %s)",
               (fleet["assets"][0], start + 2 * DAY * STEP))
    lv = levels.learn(levels.replay(settings, CONFIG, [fleet["model"]])[fleet["model"]], CONFIG)
    levels.save(db, lv)
    stored = levels.load(db, fleet["model"])[fleet["model"]]
    assert not any(v.learned for v in stored.modes.values())
    svc = DetectionService(settings, CONFIG, name="lvl-few")
    svc.start()
    st = svc._model(fleet["model"])
    assert np.allclose(st.rate_full, CONFIG.rate_full) and st.tau_h == CONFIG.tau_h
    svc.close()


def test_order_outcomes_follow_the_history():
    """An order weeks before a failure of its mode, in the same life, is true; one whose life a
    preventive maintenance ended has no known outcome; one followed by nothing is false."""
    d = 86400.0
    t = np.arange(0, 40 * d, 600.0)
    assets = np.repeat(np.array(["A", "B", "C"], dtype=object), len(t))
    tt = np.tile(t, 3)
    flagged = np.concatenate([t < 20 * d, t < 5 * d, t < 3 * d])          # A wears until it fails
    r = levels.Replay("M", ["wear"], assets, tt, np.where(flagged, 0, -1).astype(np.int8), np.where(flagged, 5.0, 0.0),
                      failures=[("A", "wear", 20 * d)], repairs={"A": np.array([20.5 * d]), "B": np.array([5 * d])},
                      preventive={"B": np.array([5 * d])}, start=0.0, end=40 * d, defaults=np.array([0.45]))
    ev = levels.evaluate(r, 24.0, 3.0, levels=(0.5,))["wear"]
    assert {k: ev[k] for k in ("failures", "caught", "orders", "true")} == {
        "failures": 1, "caught": [1], "orders": [2], "true": [1]}
    assert len(ev["leads"][0]) == 1 and 19 < ev["leads"][0][0] / 24 < 20      # A's order ran ~19 days
    assert len(ev["running"][0]) == 1 and 39 < ev["running"][0][0] / 24 < 40  # C's life still runs


def test_a_life_another_repair_ended_is_judged_by_its_as_found_report():
    """An order on a life that a repair ended with no failure of its mode: true when the repair
    found the mode ``worn`` or worse, false when ``good``; without a report, as before (another
    mode's repair: false; a preventive maintenance: unknown). Failures still decide first."""
    d = 86400.0
    t = np.arange(0, 40 * d, 600.0)
    names = ["W", "D", "G", "N", "P", "Q", "F"]
    flagged = np.concatenate([t < 5 * d] * len(names))                  # every asset's order on day ~0
    end = {a: np.array([6 * d]) for a in names}                          # a repair ends each life on day 6
    found = {"W": "worn", "D": "degraded", "G": "good", "Q": "good", "F": "good"}
    r = levels.Replay("M", ["foul", "wear"], np.repeat(np.array(names, dtype=object), len(t)), np.tile(t, len(names)),
                      np.where(flagged, 0, -1).astype(np.int8), np.where(flagged, 5.0, 0.0),
                      failures=[("N", "wear", 5.9 * d), ("F", "foul", 5.5 * d)], repairs=end,
                      preventive={"P": np.array([6 * d]), "Q": np.array([6 * d])}, start=0.0, end=40 * d,
                      defaults=np.array([0.45, 0.45]),
                      as_found={a: {6 * d: {"foul": g, "wear": "failed"}} for a, g in found.items()})
    ev = levels.evaluate(r, 24.0, 3.0, levels=(0.5,))["foul"]
    # W, D: true (under way); G, Q: false (good, whatever the repair's kind); N: another mode's
    # repair without a report, false as before; P: a maintenance without a report, unknown;
    # F: its own mode failed, true whatever the (misgraded) report says
    assert ev["orders"] == [6] and ev["true"] == [3]
    assert levels.UNDER_WAY == ("worn", "degraded", "failed")
    # the inner split's parts keep their assets' reports
    part = levels._subset(r, np.isin(r.assets, ["W", "G"]), {"W", "G"})
    assert set(part.as_found) == {"W", "G"}
    e = levels.evaluate(part, 24.0, 3.0, levels=(0.5,))["foul"]
    assert (e["orders"], e["true"]) == ([2], [1])


def _slow(leads_d, running_d, end_d=100.0, repaired_d=(), grade="worn") -> levels.Replay:
    """One slow mode: per lead in ``leads_d`` an asset whose evidence builds from day 2 until it
    fails that many days later (then repaired); per age in ``running_d`` an asset whose evidence
    built that many days before the end of the history and which neither failed nor was repaired;
    per span in ``repaired_d`` an asset whose evidence builds from day 2 until a repair (of another
    mode) that many days later, whose as-found report grades the mode ``grade``."""
    d = 86400.0
    t = np.arange(0, end_d * d, 1800.0)
    flagged, failures, repairs, names, found = [], [], {}, [], {}
    for i, lead in enumerate(leads_d):
        a = f"T{i}"
        names.append(a)
        flagged.append((t >= 2 * d) & (t < (2 + lead) * d))
        failures.append((a, "foul", (2 + lead) * d))
        repairs[a] = np.array([(2.5 + lead) * d])
    for i, age in enumerate(running_d):
        names.append(f"R{i}")
        flagged.append((t >= (end_d - age) * d) & (t < (end_d - age + 3) * d))
    for i, span in enumerate(repaired_d):
        a = f"W{i}"
        names.append(a)
        flagged.append((t >= 2 * d) & (t < (2 + span) * d))
        repairs[a] = np.array([(2 + span) * d])
        found[a] = {(2 + span) * d: {"foul": grade}}
    flagged = np.concatenate(flagged)
    return levels.Replay("M", ["foul"], np.repeat(np.array(names, dtype=object), len(t)), np.tile(t, len(names)),
                         np.where(flagged, 0, -1).astype(np.int8), np.where(flagged, 5.0, 0.0), failures=failures,
                         repairs=repairs, preventive={}, start=0.0, end=end_d * d, defaults=np.array([0.45]),
                         as_found=found)


def test_a_running_life_is_false_only_past_a_quantile_of_the_true_leads():
    """An order whose life still runs with no failure counts false once older than the quantile
    of the leads the true orders of its mode had in the same history (at least 14 days), and has
    no known outcome while younger; the 14-day rule (quantile 0) counts both false."""
    r = _slow([16, 20, 24, 28, 40], [18, 50])
    e = levels.evaluate(r, 24.0, 3.0, levels=(0.5,))["foul"]
    assert e["true"] == [5] and e["orders"] == [7]                 # 14-day rule: both running orders false
    leads = sorted(x / 24 for x in e["leads"][0])
    assert leads == pytest.approx([16, 20, 24, 28, 40], abs=1.0)
    assert list(levels._known(e, 0.0)) == [7]
    assert list(levels._known(e, 0.5)) == [6]                      # median lead ~24 d: the 18-day one unknown
    assert list(levels._known(e, 0.95)) == [6]                     # ~38 d: the 50-day one is past it, false
    # the quantile is learned from the history: with short true leads the 18-day order is false
    short = levels.evaluate(_slow([15, 15.5, 16, 16.5, 17], [18, 50]), 24.0, 3.0, levels=(0.5,))["foul"]
    assert list(levels._known(short, 0.5)) == [7]
    # without any true order there is no lead to learn from: the 14-day rule
    none = levels.evaluate(_slow([], [18, 50]), 24.0, 3.0, levels=(0.5,))["foul"]
    assert none["true"] == [0] and list(levels._known(none, 0.5)) == [2]


def test_kaplan_meier_on_a_hand_computed_example():
    """Leads 2, 3, 5 seen; 3 and 8 censored: S = 4/5, then 4/5 x 3/4 (the order censored at 3 is
    still at risk at the failure at 3), then x 1/2; as scipy's estimator gives."""
    t, s = levels.km_survival([2, 3, 3, 5, 8], [True, False, True, True, False])
    assert t.tolist() == [2, 3, 5] and s == pytest.approx([0.8, 0.6, 0.3])
    ref = stats.ecdf(stats.CensoredData(uncensored=[2, 3, 5], right=[3, 8])).sf
    assert s == pytest.approx(ref.evaluate(t))
    # a weight is that many subjects
    tw, sw = levels.km_survival([2, 3, 5, 8], [True, True, True, False], [1, 2, 1, 1])
    t2, s2 = levels.km_survival([2, 3, 3, 5, 8], [True, True, True, True, False])
    assert tw.tolist() == t2.tolist() and sw == pytest.approx(s2)
    assert [len(x) for x in levels.km_survival([4.0], [False])] == [0, 0]


@hypothesis_settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 30), st.booleans()), min_size=1, max_size=25))
def test_kaplan_meier_agrees_with_scipy(data):
    durations, observed = [float(x) for x, _ in data], [o for _, o in data]
    assume(any(observed))
    t, s = levels.km_survival(durations, observed)
    ref = stats.ecdf(stats.CensoredData(uncensored=[x for x, o in data if o],
                                        right=[x for x, o in data if not o])).sf
    assert s == pytest.approx(ref.evaluate(t))


def test_the_lead_quantile_counts_censored_true_orders():
    """Leads 10, 20, 30, 40 days seen, two true orders censored at 25 and 35 (their lives a repair
    ended first): S = 5/6, 2/3, 4/9, 0 at 10, 20, 30, 40; the median is 30, not the seen leads'
    25, and the 0.75 quantile 40, not 32.5."""
    h = [x * 24.0 for x in (10, 20, 30, 40)]
    assert levels.lead_quantile(h, [25 * 24.0, 35 * 24.0], [], 0.5, 0.8) == 30 * 24.0
    assert levels.lead_quantile(h, [25 * 24.0, 35 * 24.0], [], 0.75, 0.8) == 40 * 24.0
    assert levels.lead_quantile(h, [], [], 0.5, 0.8) == 20 * 24.0
    # past the longest lead seen the survival is 0 (zero tail): the quantile stays within the data
    assert levels.lead_quantile([10.0, 20.0], [], [100.0], 0.9, 0.8) == 20.0
    assert levels.lead_quantile([], [50.0], [60.0], 0.5, 0.8) == 0.0
    # a running order enters with its probability of being true: leads 10 and 30, one running at
    # 20, prior 0.8. Left out, S(10) = 1/2; as surely true, 2/3; the fixed point of
    # w = 0.8 S / (0.8 S + 0.2), S = (1 + w) / (2 + w) is S = (6 + sqrt 84) / 24 = 0.632
    assert levels.lead_quantile([10.0, 30.0], [], [20.0], 1 - 0.62, 0.8) == 30.0      # S(10) > 0.62
    assert levels.lead_quantile([10.0, 30.0], [], [20.0], 1 - 0.64, 0.8) == 10.0      # S(10) <= 0.64
    assert levels._prior(levels.censor_quantile(0.85)) == pytest.approx(0.85)


def test_a_slow_mode_censored_by_repairs_is_not_counted_false_at_the_old_cutoff():
    """A slow mode whose true orders mostly outlive the lives repairs ended (as-found ``worn``):
    the failures seen are mostly the quick ones, so the quantile of the seen leads alone (the old
    cutoff, 20 days) is shorter than the 24-day running order, which then counted false; with the repairs'
    lives censored the survival stays high to the one long lead seen (45 days) and the running
    order's outcome is not known yet. Graded ``good``, the same lives are false orders, the quantile
    is the seen leads' again and the running order counts false."""
    q = levels.censor_quantile(0.85)
    seen, spans = [15, 15.5, 16, 16.5, 17, 17.5, 18, 18.5, 19, 19.5, 20, 45], [25, 28, 30, 33, 36, 40]
    e = levels.evaluate(_slow(seen, [24], repaired_d=spans), 24.0, 3.0, levels=(0.5,))["foul"]
    assert e["true"] == [18] and e["orders"] == [19]
    assert sorted(x / 24 for x in e["censored"][0]) == pytest.approx(spans, abs=1.5)     # censored where repaired
    age = e["running"][0][0]
    assert 23 < age / 24 < 25 and np.quantile(e["leads"][0], q) < age                 # the old cutoff
    assert list(levels._known(e, 0.0)) == [19]                                        # the 14-day rule
    assert list(levels._known(e, q)) == [18]                                          # now: unknown
    good = levels.evaluate(_slow(seen, [24], repaired_d=spans, grade="good"), 24.0, 3.0, levels=(0.5,))["foul"]
    assert good["true"] == [12] and good["censored"] == [[]] and list(levels._known(good, q)) == [19]


def test_the_censoring_quantile_follows_the_precision_target():
    assert levels.censor_quantile(0.85) == pytest.approx(1 - 0.15 / 0.85)
    assert levels.censor_quantile(0.5) == 0.0 and levels.censor_quantile(0.3) == 0.0
    qs = [levels.Rule(p).censor_q for p in (0.8, 0.85, 0.9, 0.95)]
    assert qs == sorted(qs) and qs[0] == pytest.approx(0.75)
    assert levels.HELD_OUT_Q == levels.censor_quantile(levels.PRODUCT_PRECISION)


def test_tables_of_parts_add_up_to_the_whole():
    """The inner split sums its parts' tables; the quantile is then taken over the pooled leads,
    so a learning set's counts equal those of evaluating its assets together."""
    r = _slow([16, 20, 24, 28, 40, 22], [18, 50, 30])
    names, code = np.unique(r.assets.astype(str), return_inverse=True)
    parts = [{"T0", "T2", "R0", "T4"}, {"T1", "T3", "T5", "R1", "R2"}]
    point = [(24.0, 3.0)]
    whole = levels._tables(r, point, (0.3, 0.5))
    summed = levels._sum_tables([levels._tables(levels._subset(r, np.isin(names, list(p))[code], p), point, (0.3, 0.5))
                                 for p in parts])
    w, s = whole[point[0]]["foul"], summed[point[0]]["foul"]
    for k in ("failures", "caught", "orders", "true"):
        assert w[k] == s[k]
    assert [sorted(x) for x in w["leads"]] == [sorted(x) for x in s["leads"]]
    for q in (0.0, 0.5, 0.8):
        assert list(levels._known(w, q)) == list(levels._known(s, q))


def _history(false_alarms: bool) -> levels.Replay:
    """One mode on 24 assets over 40 days: 8 wear for five days before they fail (evidence near
    1), 4 show a burst of 6, 8, 10 or 12 hours two days before they fail (evidence peaks at 0.2
    to 0.4), 8 show a twelve-hour burst and never fail (when ``false_alarms``), 4 are quiet."""
    d = 86400.0
    t = np.arange(0, 40 * d, 600.0)
    names = [f"A{i:02d}" for i in range(24)]
    flagged, failures, repairs = [], [], {}
    for i, a in enumerate(names):
        if i < 8:
            f = (t >= 5 * d) & (t < 10 * d)
        elif i < 12:
            f = (t >= 8 * d) & (t < 8 * d + (6 + 2 * (i - 8)) * 3600)
        elif i < 20 and false_alarms:
            f = (t >= 8 * d) & (t < 8.5 * d)
        else:
            f = np.zeros(len(t), dtype=bool)
        flagged.append(f)
        if i < 12:
            failures.append((a, "wear", 10 * d))
            repairs[a] = np.array([10.5 * d])
    flagged = np.concatenate(flagged)
    return levels.Replay("M", ["wear"], np.repeat(np.array(names, dtype=object), len(t)), np.tile(t, 24),
                         np.where(flagged, 0, -1).astype(np.int8), np.where(flagged, 5.0, 0.0), failures=failures,
                         repairs=repairs, preventive={}, start=0.0, end=40 * d, defaults=np.array([0.45]))


def test_the_rule_is_chosen_on_held_out_assets():
    """A rule that catches every failure on its learning assets at precision 0.6 is not chosen when
    a stricter one keeps held-out precision above the product's target; without the false alarms
    the strict rule's level, the highest that caught every failure it learned from, misses the
    held-out burst shorter than those, and the rule taking the lowest level is chosen."""
    low, strict = levels.Rule(0.5, "lower"), levels.Rule(0.9, "higher")
    config = ServiceConfig()
    rule, report = levels.choose_rule({"M": _history(True)}, config, [strict, low])
    by = {(c["precision_target"], c["tie"]): c for c in report["candidates"]}
    held_low, held_strict = by[(0.5, "lower")], by[(0.9, "higher")]
    assert held_low["failures"] == held_strict["failures"] == 12      # every asset held out once
    assert held_low["recall"] == 1.0 and held_low["precision"] < levels.PRODUCT_PRECISION
    assert held_strict["precision"] >= levels.PRODUCT_PRECISION and held_strict["recall"] < 1.0
    assert rule == strict and report["held_out"] == held_strict
    rule, report = levels.choose_rule({"M": _history(False)}, config, [strict, low])
    assert rule == low and report["candidates"][1]["recall"] > report["candidates"][0]["recall"]


def test_ties_pick_the_requested_end_of_the_plateau():
    ev = {"caught": [1, 3, 3, 3, 3, 2], "orders": [9, 4, 3, 3, 3, 2], "true": [3, 3, 3, 3, 3, 2],
          "leads": [[]] * 6, "censored": [[]] * 6, "running": [[]] * 6}
    grid = (0.05, 0.1, 0.2, 0.4, 0.8, 1.6)
    assert levels._choose(ev, levels.Rule(0.9, "higher"), grid, 0.45) == 4
    assert levels._choose(ev, levels.Rule(0.9, "lower"), grid, 0.45) == 2
    assert levels._choose(ev, levels.Rule(0.9, "middle"), grid, 0.45) == 3
    assert levels._choose(ev, levels.Rule(0.7, "lower"), grid, 0.45) == 1
    assert levels._choose(ev, levels.Rule(0.9, "higher"), grid[:3], 0.45) == 2     # only the grid's levels are candidates
    assert levels._choose(ev, levels.Rule(1.01, "higher"), grid, 0.45) is None
    # ``default``: the plateau level nearest the shipped default (on a log scale)
    assert levels._choose(ev, levels.Rule(0.9, "default"), grid, 0.45) == 3
    assert levels._choose(ev, levels.Rule(0.9, "default"), grid, 0.05) == 2
    assert levels._choose(ev, levels.Rule(0.9, "default"), grid, 5.0) == 4
    with pytest.raises(ValueError):
        levels.Rule(0.9, "highest")


def test_folds_split_assets_and_spread_failures():
    r = _history(True)
    parts = levels._folds(r, 4, seed=0)
    assert set().union(*parts) == {f"A{i:02d}" for i in range(24)} and sum(map(len, parts)) == 24
    assert [len({a for a, _, _ in r.failures} & p) for p in parts] == [3, 3, 3, 3]
