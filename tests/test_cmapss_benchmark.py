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
