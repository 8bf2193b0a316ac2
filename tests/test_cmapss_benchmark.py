"""The C-MAPSS benchmark: scoring functions against hand-computed values, input checks, and an
end-to-end --quick run on a slice of FD001 (the full run is `python -m benchmarks.cmapss`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks import cmapss

DATA = cmapss.DEFAULT_DATA
needs_data = pytest.mark.skipif(not (DATA / "train_FD001.txt").is_file(), reason="C-MAPSS data not present")


def test_scores_by_hand():
    assert cmapss.rmse([10, 20], [13, 16]) == pytest.approx(math.sqrt((9 + 16) / 2))
    # early by 13 -> e^1 - 1; late by 10 -> e^1 - 1; exact -> 0
    assert cmapss.phm08([0, 30, 5], [13, 20, 5]) == pytest.approx(2 * (math.e - 1))


def test_targets_and_last_rows():
    s = cmapss.Split(np.array([1, 1, 1, 2, 2]), np.array([1, 2, 3, 1, 2]), np.zeros((5, 3)), np.zeros((5, 21)))
    assert cmapss.train_targets(s).tolist() == [2, 1, 0, 1, 0]
    assert cmapss.last_rows(s).tolist() == [2, 4] and s.lengths == [3, 2]


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data"):
        cmapss.load_split(tmp_path / "missing.txt")
    (tmp_path / "bad.txt").write_text("1 1 0 0 100 5\n")
    with pytest.raises(ValueError, match="26"):
        cmapss.load_split(tmp_path / "bad.txt")
    assert cmapss.main(["--data", str(tmp_path), "--quick"]) == 2


@needs_data
def test_quick_run_on_a_slice(tmp_path):
    train = np.loadtxt(DATA / "train_FD001.txt")
    test = np.loadtxt(DATA / "test_FD001.txt")
    rul = np.loadtxt(DATA / "RUL_FD001.txt")
    np.savetxt(tmp_path / "train_FD001.txt", train[train[:, 0] <= 30])
    np.savetxt(tmp_path / "test_FD001.txt", test[test[:, 0] <= 30])
    np.savetxt(tmp_path / "RUL_FD001.txt", rul[:30])
    out = tmp_path / "res.json"
    assert cmapss.main(["--quick", "--max-iter", "40", "--data", str(tmp_path), "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["test_units"] == 30 and res["seeds"] == [0]
    assert "s1" not in res["sensors"] and "s2" in res["sensors"]  # flat sensors dropped
    for block in (res, res["baseline"]):
        assert 0 < block["FD001_rmse"]["mean"] < 60 and block["FD001_phm08"]["mean"] > 0
    assert res["runtime_s"] > 0 and "rmse_ratio_vs_baseline" in res


def synthetic_multi_regime(path, rng, n_units=40, name="FD002"):
    """A C-MAPSS-like subset: six flight conditions set every sensor's level (hundreds of noise
    sd), wear adds a slow exponential drift to some sensors, engines start at different health."""
    levels = np.array([[0, 0, 100], [10, 0.25, 100], [20, 0.7, 100], [25, 0.62, 60], [35, 0.84, 100], [42, 0.84, 100]])
    offsets = rng.normal(0, 50, (6, 21))

    def unit(u, n, stop):
        k = rng.integers(0, 6, n)
        settings = levels[k] + rng.normal(0, [1e-3, 1e-4, 0], (n, 3))
        life = np.arange(1, n + 1)
        wear = np.exp((life - n) / 40.0) + rng.uniform(0, 0.2)
        sens = 500 + offsets[k] + rng.normal(0, 1, (n, 21))
        sens[:, 1:12] += 6 * wear[:, None]
        sens[:, 0] = 500 + offsets[k, 0]                 # flat within its regime
        return np.c_[np.full(stop, u), life[:stop], settings[:stop], sens[:stop]]

    lengths = rng.integers(130, 220, n_units)
    train = np.vstack([unit(u, int(n), int(n)) for u, n in zip(range(1, n_units + 1), lengths)])
    tests, rul = [], []
    for u in range(1, n_units + 1):
        n = int(rng.integers(130, 220))
        stop = int(rng.integers(40, n))
        tests.append(unit(u, n, stop))
        rul.append(n - stop)
    np.savetxt(path / f"train_{name}.txt", train)
    np.savetxt(path / f"test_{name}.txt", np.vstack(tests))
    np.savetxt(path / f"RUL_{name}.txt", np.array(rul))


def test_multi_regime_subset_is_normalised_by_learned_regimes(tmp_path):
    synthetic_multi_regime(tmp_path, np.random.default_rng(3))
    out = tmp_path / "res.json"
    assert cmapss.main(["--quick", "--max-iter", "60", "--subsets", "FD002", "--data", str(tmp_path),
                        "--json", str(out)]) == 0
    res = json.loads(out.read_text())
    detail = res["detail"]["FD002"]
    assert res["subsets"] == ["FD002"] and detail["regimes"]["regimes"] == 6
    assert "s1" not in detail["sensors"] and "s2" in detail["sensors"]   # flat within its regime: dropped
    # within their regime the drifting sensors show the wear; raw, the regime hides it
    assert res["FD002_rmse"]["mean"] < 0.7 * res["baseline"]["FD002_rmse"]["mean"]
    assert set(res["FD002_rmse"]) == {"mean", "std", "runs"} and "FD002_phm08" in res
