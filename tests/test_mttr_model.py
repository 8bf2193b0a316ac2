"""The repair-time model on synthetic repairs with known effects: it learns them, its conformal
intervals cover what they say on held-out repairs, few repairs fall back to the manual's figure
(wide, centred on it), and bad input is refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from detection.mttr import MttrModel

NOMINAL = {(m, f): h * (1.5 if m == "B" else 1.0) for m in "AB" for f, h in (("x", 4.0), ("y", 8.0), ("z", 12.0))}
SKILL = {1: 1.4, 2: 1.0, 3: 0.7}           # the known effect of the technician's level


def repairs(n: int, seed: int, *, parts_p: float = 0.8) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        m, f = str(rng.choice(["A", "B"])), str(rng.choice(["x", "y", "z"]))
        skill, parts = int(rng.integers(1, 4)), bool(rng.random() < parts_p)
        h = NOMINAL[(m, f)] * SKILL[skill] * rng.lognormal(0, 0.3) + (0.0 if parts else rng.uniform(12, 48))
        out.append({"model_id": m, "mode": f, "skill_level": skill, "parts_on_hand": parts,
                    "site_id": f"s{rng.integers(20)}", "region": "north", "hour": int(rng.integers(24)),
                    "dow": int(rng.integers(7)), "duration_h": h})
    return out


@pytest.fixture(scope="module")
def fitted():
    return MttrModel().fit(repairs(3000, 1), NOMINAL)


@pytest.fixture(scope="module")
def held_out():
    return repairs(3000, 2)


def test_learns_skill_and_parts(fitted):
    by_skill = fitted.predict([{"model_id": "A", "mode": "y", "skill_level": s, "parts_on_hand": True,
                                "hour": 10, "dow": 1} for s in (1, 2, 3)])
    assert by_skill[0] > by_skill[1] > by_skill[2]
    assert by_skill[0] / by_skill[2] == pytest.approx(SKILL[1] / SKILL[3], rel=0.2)
    assert by_skill[1] == pytest.approx(8.0, rel=0.15)           # the manual's figure x 1.0
    on_hand, waiting = fitted.predict([{"model_id": "B", "mode": "x", "skill_level": 2, "parts_on_hand": p,
                                        "hour": 10, "dow": 1} for p in (True, False)])
    assert waiting > on_hand + 15                                  # parts take 12-48 h more
    assert fitted.routes([{"model_id": "A", "mode": "y"}]).tolist() == ["group"]


def test_coverage_near_nominal_on_held_out_repairs(fitted, held_out):
    y = np.array([r["duration_h"] for r in held_out])
    for alpha in (0.2, 0.1):
        lo, hi = fitted.predict_interval(held_out, alpha)
        assert np.all(lo <= hi)
        assert np.mean((y >= lo) & (y <= hi)) == pytest.approx(1 - alpha, abs=0.03)
    # a repair nobody has planned yet (technician, parts and time unknown): the mixture over them
    unplanned = [{k: v for k, v in r.items() if k in ("model_id", "mode", "site_id", "region")} for r in held_out[:600]]
    lo, hi = fitted.predict_interval(unplanned, 0.1)
    assert np.mean((y[:600] >= lo) & (y[:600] <= hi)) == pytest.approx(0.9, abs=0.04)
    planned_lo, planned_hi = fitted.predict_interval(held_out[:600], 0.1)
    assert np.mean(hi - lo) > np.mean(planned_hi - planned_lo)     # knowing less: wider


def test_quantiles_are_a_distribution(fitted, held_out):
    q = fitted.quantiles(held_out[:50], [0.05, 0.25, 0.5, 0.75, 0.95])
    assert q.shape == (50, 5) and np.all(np.diff(q, axis=1) >= 0) and np.all(q > 0)
    assert np.allclose(q[:, 2], fitted.predict(held_out[:50]))


def test_few_repairs_fall_back_to_the_manual_wide_and_centred():
    few = [{"model_id": "A", "mode": "x", "duration_h": h} for h in (2.0, 9.0, 3.0)]
    m = MttrModel().fit(few, NOMINAL)
    row = [{"model_id": "A", "mode": "x", "skill_level": 3}]
    assert m.routes(row).tolist() == ["manual"]
    assert m.predict(row)[0] == pytest.approx(4.0)
    lo, hi = m.predict_interval(row, 0.1)
    assert np.sqrt(lo[0] * hi[0]) == pytest.approx(4.0)             # centred (geometrically)
    assert hi[0] / lo[0] > 10                                        # and honestly wide
    # a mode with a manual figure but no repairs at all, inside a well-fitted model: the same
    big = MttrModel().fit([r for r in repairs(1500, 3) if (r["model_id"], r["mode"]) != ("B", "z")], NOMINAL)
    assert big.routes([{"model_id": "B", "mode": "z"}]).tolist() == ["manual"]
    assert big.predict([{"model_id": "B", "mode": "z"}])[0] == pytest.approx(18.0)
    # neither repairs nor a manual figure: no prediction
    assert np.isnan(big.predict([{"model_id": "C", "mode": "x"}])[0])


@pytest.mark.parametrize("row, message", [
    ({"model_id": "A"}, "model_id and mode"),
    ({"model_id": "A", "mode": None}, "model_id and a mode"),
    ({"model_id": "A", "mode": "x", "skill_level": 7}, "skill_level"),
    ({"model_id": "A", "mode": "x", "parts_on_hand": "maybe"}, "parts_on_hand"),
    ({"model_id": "A", "mode": "x", "kind": "repair"}, "kind"),
    ({"model_id": "A", "mode": "x", "start": "yesterday"}, "start"),
    ({"model_id": "A", "mode": "x", "hour": 25}, "hour"),
])
def test_bad_rows_are_refused(fitted, row, message):
    with pytest.raises(ValueError, match=message):
        fitted.predict([row])


def test_bad_arguments_are_refused(fitted):
    row = [{"model_id": "A", "mode": "x"}]
    with pytest.raises(ValueError, match="alpha"):
        fitted.predict_interval(row, 1.5)
    with pytest.raises(ValueError, match="quantiles"):
        fitted.quantiles(row, [0.0, 0.5])
    with pytest.raises(ValueError, match="durations"):
        MttrModel().fit([{"model_id": "A", "mode": "x", "duration_h": -1.0}], NOMINAL)
    with pytest.raises(ValueError, match="rows"):
        fitted.predict("A/x")
    with pytest.raises(RuntimeError, match="not fitted"):
        MttrModel().predict(row)


def test_manual_figures_registered_after_the_fit_are_used(fitted):
    import copy

    m = copy.deepcopy(fitted)
    before = m.predict([{"model_id": "A", "mode": "y", "skill_level": 2}])[0]
    m.refresh_nominal({("C", "x"): 7.0, ("A", "y"): 100.0})
    assert m.predict([{"model_id": "C", "mode": "x"}])[0] == pytest.approx(7.0)      # new model: manual
    assert m.predict([{"model_id": "A", "mode": "y", "skill_level": 2}])[0] == before  # learned: as fitted


def test_quantiles_a_small_calibration_cannot_resolve_are_left_open():
    rng = np.random.default_rng(0)
    rows = [{"model_id": "A", "mode": "x", "duration_h": float(rng.lognormal(1, 0.3)), "skill_level": 2,
             "parts_on_hand": True, "hour": 3, "dow": 1} for _ in range(80)]
    m = MttrModel().fit(rows, NOMINAL)                    # 24 calibration repairs, pooled
    qs = np.round(np.linspace(0.01, 0.99, 99), 2)
    q = m.quantiles([rows[0], {"model_id": "A", "mode": "x"}], qs)   # planned and unplanned
    assert np.all(q[:, :3] == 0) and np.all(np.isinf(q[:, -3:]))    # 1-3% / 97-99%: open
    assert np.all(np.isfinite(q[:, 10:90])) and np.all(q[:, 1:] >= q[:, :-1])
