"""A real fleet: Backblaze's hard drives (2013-04-10 to 2013-05-19), through the platform's
prediction code.

Drives are assets, the SMART raw attributes that hold values are sensors, one reading a day
(bucketed as the platform buckets telemetry, ``step_h = 24``). Drives are split by serial into
train and test halves (each with half of the failed drives), five splits. The platform's
trainer (``detection.prediction.training.train``, what ``prognos train`` runs) learns from the
train drives only: their telemetry and their failures. The test drives are then predicted day by
day, causally (``AssetPredictor.predict_history``: a day's prediction uses that day and earlier).

A failure is the end of the drive's ``failure = 1`` day; that day's row is dropped (it is the
failure itself, not a precursor), so every prediction is at least one day ahead.

- Drive-day average precision of "fails within 7 days" (p_fail over the 7-day horizon), on the
  test drive-days whose label is known (a drive seen 7 more days, or failing within 7).
- Orders: one per drive, on the first day its p_fail reaches the threshold. The platform's own
  operating point is ``p_fail >= 0.5`` (more likely than not to fail within the horizon; the
  classifier is unweighted, so p_fail is a probability): nothing is tuned on test drives.
  Recall of test failures caught any time ahead and 1-7 days ahead, order precision (true = the
  drive fails later in the window), false orders per 1,000 drive-months, median lead.
- Backblaze's rule in the same run: an order on the first day any of SMART 5/187/188/197/198
  raw is above zero.
- Curve points of the platform's ranking on the test drives: its 1-7-day recall when it places
  as many orders as the rule, and its best 1-7-day recall at order precision >= 0.5.

Choosing the configuration without the test drives: ``--inner-of K`` runs the same protocol
inside split K's train drives only (halved again by drive, seeds 101, 102, ...), so a change is
judged there: ``--rise`` adds the counter-rise features (``FeatureSpec.rise``), ``--windows``
sets the feature windows in days, ``--horizon-days`` the horizon the trainer learns (the scored
label stays "fails within 7 days"). Tried and measured so far, none adopted: benchmarks/RESULTS.md.

Two product options for a fleet of variants and late-rising risk: ``--variant-prior`` (the
trainer learns each drive model's failure rate from the train drives, ``VariantPrior``, as a
feature) and ``--order-rise K --rise-factor F`` (``OrderRule``: an order only once p_fail is
F times its lowest of the last K days), and ``--urgency A`` (the rule orders on p_fail weighed
by the predictor's remaining life, ``p_fail * (24 h / (rul + 24 h)) ** A``: of two drives
equally likely to fail within the week, the one predicted to fail sooner). ``--choose N`` makes
the choices nested, per split, inside that split's train drives (N inner seeds; candidates:
with or without the prior, x each urgency of ``URGENCY_GRID`` (``--urgencies``) x the first
crossing or any rule of ``RISE_GRID``; ``--choose-rule-only``: the rule alone), so no test
drive takes part in any choice. The choice's scoring and ranking, and the order day
(``OrderRule.first_order``), are the product's: :mod:`detection.prediction.order_choice`, which
``prognos train`` runs on a product model's own history, and the detection service.
``--choose-as-product`` makes each split's choice exactly the product's: the train drives as one
product model's history through ``order_choice.choose_for_model`` (what ``prognos train`` stores in
``order_rules``: two inner halves, the budget as many orders as held-out failures, no discount of a
remaining life within the horizon), scored on the split's test drives beside the first crossing.

    python -m benchmarks.backblaze [--quick] --json PATH [--data ../shared/datasets/backblaze-2013]
        [--inner-of K] [--rise] [--windows 2,4,8,14] [--horizon-days 3]
        [--variant-prior] [--order-rise K --rise-factor F] [--urgency A] [--urgency-from-h T] [--compare-order-rules]
        [--choose N [--choose-rule-only] [--urgencies 0,1,2,3]] [--choose-as-product]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from datetime import date
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score
from tqdm import tqdm

from benchmarks.common import parser, write
from detection.features.pipeline import FeatureSpec
from detection.prediction.history import AssetHistory, ModelHistory, bucket_readings
from detection.prediction import order_choice
from detection.prediction.order_choice import RISE_GRID, URGENCY_GRID, Life, candidate_rules, rule_name as _rule_name
from detection.prediction.order_rule import OrderRule
from detection.prediction.training import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT / ".." / "shared" / "datasets" / "backblaze-2013"
MODE = "drive_failure"
RULE_ATTRS = (5, 187, 188, 197, 198)
HORIZON_DAYS = 7
DAY_S = 86400.0
DAYS_PER_MONTH = 365.25 / 12
#: the trainer's configuration for a product reporting once a day (rows are days)
CONFIG = {"horizon_h": HORIZON_DAYS * 24.0, "rul_cap_h": 30 * 24.0, "stride_h": 24, "min_history_h": 24,
          "holdout": 0.0, "regimes": 0, "n_members": 2, "max_iter": 150,
          "spec": FeatureSpec(windows=(3, 7, 14), ewm_alphas=(0.3,), crossings=False)}
THRESHOLD = 0.5
#: the benchmark's names of :mod:`detection.prediction.order_choice`'s figures (a row is a day, the horizon 7 days,
#: the budget of orders the number Backblaze's rule places)
NAMES = {"true_h": "true_7d", "recall_h": "recall_7d", "precision_h": "precision_7d",
         "false_orders_per_1000_months": "false_orders_per_1000_drive_months", "median_lead_rows": "median_lead_days",
         "recall_h_at_budget": "recall_7d_at_rule_orders", "recall_h_at_precision_0_5": "recall_7d_at_precision_0_5",
         "average_precision": "average_precision_7d"}
TARGETS = {"average_precision_7d": 0.20, "recall_7d_at_rule_orders": 0.35, "recall_7d_at_precision_0_5": 0.10}


@dataclass
class Drive:
    serial: str
    model: str
    first_day: int        # day index (0 = the first file's date) of row 0
    values: np.ndarray    # float64[n_days, n_sensors] SMART raw values + capacity, NaN = missing
    failure_day: int | None  # the day with failure = 1 (its row is not in values)
    rule: np.ndarray      # float64[n_days, len(RULE_ATTRS)]

    @property
    def last_day(self) -> int:
        """Last day with a reading (the day before the failure for a failed drive)."""
        return self.first_day + self.values.shape[0] - 1


def _num(s: str) -> float:
    return float(s) if s else np.nan


def load_drives(data_dir: Path, max_files: int | None = None, progress: bool = True) -> tuple[list[Drive], list[str], date]:
    """Read the daily files: one :class:`Drive` per serial, the sensor names, day 0's date.
    Sensors are the SMART raw columns with at least one value, then ``capacity_bytes``."""
    files = sorted((data_dir / "data").glob("*.csv.gz"))
    if not files:
        raise FileNotFoundError(f"no Backblaze daily files in {data_dir / 'data'} (pass --data DIR)")
    files = files[:max_files] if max_files else files
    day0 = date.fromisoformat(files[0].name[:10])
    rows: dict[str, list] = {}
    header: list[str] | None = None
    for f in tqdm(files, desc="backblaze: reading days", disable=not progress, file=sys.stderr):
        with gzip.open(f, "rt", newline="") as fh:
            reader = csv.reader(fh)
            h = next(reader)
            if header is None:
                header = h
                need = {"date", "serial_number", "model", "capacity_bytes", "failure"}
                if not need <= set(h):
                    raise ValueError(f"{f}: missing columns {sorted(need - set(h))}")
                raw = [i for i, c in enumerate(h) if c.startswith("smart_") and c.endswith("_raw")]
                ix = {c: h.index(c) for c in need}
            elif h != header:
                raise ValueError(f"{f}: columns differ from {files[0].name}")
            for r in reader:
                d = (date.fromisoformat(r[ix["date"]]) - day0).days
                vals = [_num(r[i]) for i in raw]
                rows.setdefault(r[ix["serial_number"]], []).append(
                    (d, r[ix["model"]], _num(r[ix["capacity_bytes"]]), int(r[ix["failure"]] or 0), vals))
    names = [header[i] for i in raw]
    attrs = [int(n.split("_")[1]) for n in names]
    filled = np.zeros(len(raw), bool)
    drives = []
    for serial, rs in rows.items():
        rs.sort(key=lambda r: r[0])
        days = np.array([r[0] for r in rs])
        if len(np.unique(days)) != len(days):
            raise ValueError(f"drive {serial}: two rows on one day")
        v = np.array([r[4] for r in rs], dtype=np.float64)
        filled |= np.isfinite(v).any(axis=0)
        fails = [r[0] for r in rs if r[3] == 1]
        drives.append((serial, rs[0][1], days, v, np.array([r[2] for r in rs]), fails[0] if fails else None))
    keep = np.flatnonzero(filled)
    rule_cols = [attrs.index(a) if a in attrs else None for a in RULE_ATTRS]
    out = []
    for serial, model, days, v, cap, fail in drives:
        if fail is not None:          # the failure-day row is the failure, not a precursor
            pre = days < fail
            days, v, cap = days[pre], v[pre], cap[pre]
            if len(days) == 0:
                continue
        n = int(days[-1] - days[0]) + 1
        grid = np.full((n, len(keep) + 1), np.nan)
        grid[days - days[0], :-1] = v[:, keep]
        grid[days - days[0], -1] = cap
        rule = np.full((n, len(RULE_ATTRS)), np.nan)
        for j, c in enumerate(rule_cols):
            if c is not None:
                rule[days - days[0], j] = v[:, c]
        out.append(Drive(serial, model, int(days[0]), grid, fail, rule))
    return out, [names[i] for i in keep] + ["capacity_bytes"], day0


def history(drive: Drive, epoch_day: int) -> AssetHistory:
    """The drive as the platform sees it: daily buckets of its readings; a failure at the end
    of its failure day."""
    d = drive.first_day + np.flatnonzero(np.isfinite(drive.values).any(axis=1))
    t = (epoch_day + d) * DAY_S
    failures = [] if drive.failure_day is None else [((epoch_day + drive.failure_day + 1) * 24.0, MODE)]
    rows = drive.values[d - drive.first_day]
    h = bucket_readings(drive.serial, t, rows, step_h=24.0, failures=failures)
    h.variant = drive.model     # the drive model: what the operator knows of every drive
    return h


def split(drives: list[Drive], seed: int) -> np.ndarray:
    """Boolean mask of the test drives: half of the failed drives and half of the others."""
    rng = np.random.default_rng(seed)
    failed = np.array([d.failure_day is not None for d in drives])
    test = np.zeros(len(drives), bool)
    for group in (np.flatnonzero(failed), np.flatnonzero(~failed)):
        test[rng.permutation(group)[: len(group) // 2]] = True
    return test


def day_labels(drive: Drive) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the drive: (known, positive) for "fails within 7 days". A row is known if the
    drive fails within 7 days of it, or is seen (or the data run) 7 more days without failing
    and the drive was still there (a drive that leaves without failing is unknown after)."""
    day = drive.first_day + np.arange(drive.values.shape[0])
    if drive.failure_day is not None:
        lead = drive.failure_day - day
        return np.ones(len(day), bool), lead <= HORIZON_DAYS
    return drive.last_day - day >= HORIZON_DAYS, np.zeros(len(day), bool)


def _named(figures: dict) -> dict:
    return {NAMES.get(k, k): v for k, v in figures.items()}


def lives(drives: list[Drive]) -> list[Life]:
    """Each drive is one life of its rows; a failed drive's failure is the row after its last."""
    return [Life(d.values.shape[0], None if d.failure_day is None else d.failure_day - d.first_day) for d in drives]


def score_orders(drives: list[Drive], order_row: list[int | None]) -> dict:
    """Orders (one per drive, at a row of that drive, or None) against the failures
    (:func:`detection.prediction.order_choice.score_orders`)."""
    return _named(order_choice.score_orders(lives(drives), order_row, HORIZON_DAYS, DAYS_PER_MONTH))


def rule_orders(drives: list[Drive]) -> list[int | None]:
    out = []
    for d in drives:
        with np.errstate(invalid="ignore"):
            hit = np.flatnonzero(np.nan_to_num(d.rule, nan=0.0).max(axis=1) > 0)
        out.append(int(hit[0]) if hit.size else None)
    return out


def order_figures(test_drives: list[Drive], scores: list[np.ndarray], rule: OrderRule, n_rule_orders: int,
                  ruls: list[np.ndarray] | None = None) -> dict:
    """Orders placed by ``rule`` on the test drives' p_fail histories (and predicted remaining
    lives ``ruls``, hours, for a rule with urgency), each on the day the detection service would
    order (``OrderRule.first_order``), and the curve points of its ranking at the rule's number of
    orders (:func:`detection.prediction.order_choice.rule_figures`)."""
    return _named(order_choice.rule_figures(lives(test_drives), scores, ruls, rule, n_rule_orders, HORIZON_DAYS,
                                            DAYS_PER_MONTH))


def run_split(drives: list[Drive], sensors: list[str], epoch_day: int, seed: int,
              cfg: TrainConfig, rule: OrderRule, compare: tuple[OrderRule, ...] = ()) -> dict:
    test = split(drives, seed)
    train_drives = [d for d, t in zip(drives, test) if not t]
    test_drives = [d for d, t in zip(drives, test) if t]
    hist = ModelHistory("hdd", sensors, {MODE: True}, [history(d, epoch_day) for d in train_drives])
    t0 = time.perf_counter()
    predictor, meta = train(hist, cfg)
    fit_s = time.perf_counter() - t0
    predicted = predictor.predict_histories([d.values for d in test_drives], [d.model for d in test_drives])
    ruls, scores = [r for r, _ in predicted], [p for _, p in predicted]
    known, positive = zip(*(day_labels(d) for d in test_drives))
    p_all, k_all, y_all = np.concatenate(scores), np.concatenate(known), np.concatenate(positive)
    rule_of_thumb = score_orders(test_drives, rule_orders(test_drives))
    ours = order_figures(test_drives, scores, rule, rule_of_thumb["orders"], ruls)
    ours["average_precision_7d"] = float(average_precision_score(y_all[k_all], p_all[k_all]))
    candidates = {_rule_name(r): order_figures(test_drives, scores, r, rule_of_thumb["orders"], ruls) for r in compare}
    rule = rule_of_thumb
    # the rule's drive-day score: 1 while any of its counters is above zero
    rule_day = np.concatenate([(np.nan_to_num(d.rule, nan=0.0).max(axis=1) > 0).astype(float) for d in test_drives])
    rule["average_precision_7d"] = float(average_precision_score(y_all[k_all], rule_day[k_all]))
    # the rule has one operating point: its own orders, and nothing where its precision is < 0.5
    rule["recall_7d_at_rule_orders"] = rule["recall_7d"]
    rule["recall_7d_at_precision_0_5"] = rule["recall_7d"] if rule["precision"] >= 0.5 else 0.0
    return {"seed": seed, "ours": ours, "rule": rule, "fit_s": fit_s, "order_rules": candidates,
            "train_drives": len(train_drives), "test_drives": len(test_drives),
            "train_failures": int(sum(d.failure_day is not None for d in train_drives)),
            "test_drive_days": int(sum(d.values.shape[0] for d in test_drives)),
            "known_drive_days": int(k_all.sum()), "positive_drive_days": int(y_all[k_all].sum()),
            "train_rows": meta["data"]["rows"], "train_positives": meta["data"]["horizon_positives"]}


#: what the nested choice ranks candidates by (mean over the inner seeds; later keys break ties)
CHOICE_KEYS = tuple(NAMES[k] for k in order_choice.CHOICE_KEYS)


def choose(train_drives: list[Drive], sensors: list[str], epoch_day: int, cfgs: dict[str, TrainConfig],
           threshold: float, n_inner: int, urgencies: tuple[float, ...] = URGENCY_GRID,
           urgency_from_h: float = 0.0) -> tuple[str, OrderRule, dict]:
    """The trainer configuration (``cfgs``: name -> config) and order rule chosen inside one outer
    split's train drives: each inner seed (101, 102, ...) halves them again by drive, every
    configuration is trained on one half and scored on the other with every candidate rule, and
    the candidate with the best mean of ``CHOICE_KEYS`` wins (ties: the first, i.e. the simpler:
    configurations and rules are listed plainest first). Returns (name, rule, inner means)."""
    rules = candidate_rules(threshold, urgencies, urgency_from_h)
    by_name = {_rule_name(r): r for r in rules}
    runs: dict[tuple[str, str], list[dict]] = {}
    for j in range(n_inner):
        for cname, cfg in cfgs.items():
            res = run_split(train_drives, sensors, epoch_day, 101 + j, cfg, rules[0], rules)   # rules[0]: first crossing
            for rname, fig in res["order_rules"].items():
                runs.setdefault((cname, rname), []).append(
                    {k: fig[k] for k in CHOICE_KEYS[:2]} | {"average_precision_7d": res["ours"]["average_precision_7d"]})
    top, means = order_choice.best(runs, CHOICE_KEYS)
    table = {f"{c}/{r}": m for (c, r), m in means.items()}
    return top[0], by_name[top[1]], table


KEYS = ("average_precision_7d", "recall_7d_at_rule_orders", "recall_7d_at_precision_0_5", "recall",
        "recall_7d", "precision", "precision_7d", "false_orders_per_1000_drive_months", "median_lead_days")


def summarise(splits: list[dict], who: str) -> dict:
    """Mean, std and runs of every key over the splits, for ``who``: "ours", "rule" or the name
    of a compared order rule."""
    of = [s[who] if who in s else s["order_rules"][who] for s in splits]
    out: dict = {}
    for k in KEYS:
        vals = [o[k] for o in of if k in o]
        if not vals:
            continue
        arr = np.array(vals, dtype=float)
        out[k] = float(np.nanmean(arr)) if np.isfinite(arr).any() else float("nan")
        out[f"{k}_std"] = float(np.nanstd(arr)) if np.isfinite(arr).any() else float("nan")
        out[f"{k}_runs"] = [float(v) for v in arr]
    out["orders_mean"] = float(np.mean([o["orders"] for o in of]))
    return out


def _days(text: str) -> tuple[int, ...]:
    try:
        out = tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"windows must be whole days separated by commas, got {text!r}") from None
    if not out or min(out) < 1:
        raise argparse.ArgumentTypeError(f"windows must be >= 1 day, got {text!r}")
    return out


def _urgencies(text: str) -> tuple[float, ...]:
    try:
        out = tuple(float(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"urgencies must be numbers separated by commas, got {text!r}") from None
    if not out or not all(np.isfinite(u) and u >= 0 for u in out):
        raise argparse.ArgumentTypeError(f"urgencies must be finite and >= 0, got {text!r}")
    return tuple(sorted(set(out)))


def configure(cfg: TrainConfig, rise: bool = False, windows: tuple[int, ...] | None = None,
              horizon_days: float | None = None, variant_prior: bool = False) -> TrainConfig:
    """The benchmark's trainer configuration with the command line's changes (each one a
    candidate judged with ``--inner-of``, never on test drives)."""
    if rise:
        cfg = replace(cfg, spec=replace(cfg.spec, rise=True))
    if windows:
        cfg = replace(cfg, spec=replace(cfg.spec, windows=windows))
    if horizon_days is not None:
        if not horizon_days > 0:
            raise ValueError(f"horizon must be > 0 days, got {horizon_days}")
        cfg = replace(cfg, horizon_h=24.0 * horizon_days)
    if variant_prior:
        cfg = replace(cfg, variant_prior=True)
    return cfg


def main(argv=None) -> int:
    p = parser(__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the backblaze-2013 directory")
    p.add_argument("--splits", type=int, default=None, help="train/test splits by drive (default 5; quick 1, the same model)")
    p.add_argument("--threshold", type=float, default=THRESHOLD, help="p_fail that opens an order (default 0.5)")
    p.add_argument("--max-files", type=int, default=None, help="read only the first N days (tests)")
    p.add_argument("--rise", action="store_true", help="add the counter-rise features (FeatureSpec.rise; not chosen: see RESULTS.md)")
    p.add_argument("--windows", type=_days, default=None, metavar="W,W,...",
                   help=f"feature windows in days (default {','.join(map(str, CONFIG['spec'].windows))})")
    p.add_argument("--horizon-days", type=float, default=None, metavar="H",
                   help=f"the horizon the trainer learns (default {HORIZON_DAYS}); scoring stays 'fails within {HORIZON_DAYS} days'")
    p.add_argument("--variant-prior", action="store_true",
                   help="the trainer learns each drive model's failure rate from the train drives (VariantPrior) as a feature")
    p.add_argument("--order-rise", type=int, default=0, metavar="K",
                   help="order only once p_fail has risen --rise-factor-fold over the last K days (default 0: first crossing)")
    p.add_argument("--rise-factor", type=float, default=2.0, metavar="F", help="with --order-rise (default 2)")
    p.add_argument("--urgency", type=float, default=0.0, metavar="A",
                   help="weigh p_fail by the predicted remaining life: p_fail * (24 h / (rul + 24 h)) ** A (OrderRule.urgency; default 0)")
    p.add_argument("--urgency-from-h", type=float, default=0.0, metavar="T",
                   help="with --urgency or --choose: no discount for a remaining life up to T hours "
                        "(OrderRule.urgency_from_h; e.g. the horizon, 168, so p_fail >= 0.5 still orders; default 0)")
    p.add_argument("--urgencies", type=_urgencies, default=URGENCY_GRID, metavar="A,A,...",
                   help=f"with --choose: the urgencies tried with every rule (default {','.join(f'{u:g}' for u in URGENCY_GRID)})")
    p.add_argument("--compare-order-rules", action="store_true",
                   help="also score the order rules of RISE_GRID (K days x factor F) on the same predictions")
    p.add_argument("--choose", type=int, default=0, metavar="N",
                   help="nested choice: inside each split's train drives (N inner seeds) choose the trainer "
                        "configuration (as given, or with --variant-prior) and the order rule (first crossing or RISE_GRID)")
    p.add_argument("--choose-rule-only", action="store_true",
                   help="with --choose: the trainer configuration as given (no variant prior); choose only the order rule")
    p.add_argument("--choose-as-product", action="store_true",
                   help="per split, the order rule prognos train would store for the train drives "
                        "(detection.prediction.order_choice.choose_for_model), scored beside the first crossing")
    p.add_argument("--inner-of", type=int, default=None, metavar="K",
                   help="validate inside split K's train drives only (inner seeds 101, 102, ...)")
    args = p.parse_args(argv)
    n_splits = args.splits or (1 if args.quick else 5)
    if not (args.urgency_from_h >= 0 and np.isfinite(args.urgency_from_h)):
        p.error(f"--urgency-from-h must be a finite number of hours >= 0, got {args.urgency_from_h:g}")
    if n_splits < 1 or not 0 < args.threshold <= 1:
        p.error("--splits must be >= 1 and --threshold in (0, 1]")
    if args.horizon_days is not None and not args.horizon_days > 0:
        p.error(f"--horizon-days must be > 0, got {args.horizon_days:g}")
    if args.choose_as_product and (args.choose or args.order_rise or args.urgency or args.variant_prior):
        p.error("--choose-as-product chooses the order rule as prognos train does "
                "(no --choose, --order-rise, --urgency, --variant-prior)")
    if args.choose_rule_only and not args.choose:
        p.error("--choose-rule-only needs --choose N")
    if args.choose < 0 or (args.choose and (args.variant_prior or args.order_rise or args.urgency
                                            or args.inner_of is not None)):
        p.error("--choose N (N >= 1 inner seeds) chooses the variant prior and the order rule itself, "
                "outer splits only (no --variant-prior, --order-rise, --urgency, --inner-of)")
    try:
        rule = OrderRule(args.threshold, args.order_rise, args.rise_factor, urgency=args.urgency,
                         urgency_from_h=args.urgency_from_h)
    except ValueError as exc:
        p.error(f"order rule: {exc}")
    compare = (candidate_rules(args.threshold, (args.urgency,), args.urgency_from_h)[1:]    # RISE_GRID's rules
               if args.compare_order_rules else ())
    t0 = time.perf_counter()
    try:
        drives, sensors, day0 = load_drives(args.data, args.max_files)
    except (FileNotFoundError, ValueError) as exc:
        print(f"backblaze: {exc}", file=sys.stderr)
        return 2
    epoch_day = (day0 - date(1970, 1, 1)).days
    cfg = TrainConfig(**CONFIG)
    cfg = configure(cfg, rise=args.rise, windows=args.windows, horizon_days=args.horizon_days,
                    variant_prior=args.variant_prior)
    seeds = list(range(n_splits))
    if args.inner_of is not None:   # the outer split's test drives are never read
        drives = [d for d, t in zip(drives, split(drives, args.inner_of)) if not t]
        seeds = [101 + i for i in range(n_splits)]
    t_load = time.perf_counter() - t0
    splits = []
    cfgs = {"plain": cfg} if args.choose_rule_only else {"plain": cfg, "variant_prior": replace(cfg, variant_prior=True)}
    for i, seed in enumerate(seeds):
        if args.choose:     # chosen on this split's train drives only; its test drives are not read
            train_drives = [d for d, t in zip(drives, split(drives, seed)) if not t]
            cname, chosen, table = choose(train_drives, sensors, epoch_day, cfgs, args.threshold, args.choose,
                                          args.urgencies, args.urgency_from_h)
            print(f"split {seed}: chose {cname} / {_rule_name(chosen)} inside its train drives "
                  f"(inner {dict(zip(CHOICE_KEYS, table[f'{cname}/{_rule_name(chosen)}'].values()))})",
                  file=sys.stderr, flush=True)
            res = run_split(drives, sensors, epoch_day, seed, cfgs[cname], chosen,
                            candidate_rules(args.threshold, args.urgencies, args.urgency_from_h))
            res["choice"] = {"config": cname, "rule": asdict(chosen), "name": _rule_name(chosen), "inner": table}
        elif args.choose_as_product:   # what prognos train stores, from this split's train drives only
            train_drives = [d for d, t in zip(drives, split(drives, seed)) if not t]
            hist = ModelHistory("hdd", sensors, {MODE: True}, [history(d, epoch_day) for d in train_drives])
            chosen = order_choice.choose_for_model(hist, cfg, args.threshold)
            if isinstance(chosen, str):
                print(f"backblaze: split {seed}: no order rule chosen: {chosen}", file=sys.stderr)
                return 2
            print(f"split {seed}: prognos train's choice on its train drives: {chosen.name} ({chosen.rule.describe('d')}; "
                  f"inner recall at as many orders as failures {chosen.held_out['recall_h_at_budget']:.2f})",
                  file=sys.stderr, flush=True)
            res = run_split(drives, sensors, epoch_day, seed, cfg, chosen.rule, (OrderRule(args.threshold),))
            res["choice"] = {"config": "product", "rule": asdict(chosen.rule), "name": chosen.name,
                             "inner": chosen.held_out}
        else:
            res = run_split(drives, sensors, epoch_day, seed, cfg, rule, compare)
        o, r = res["ours"], res["rule"]
        print(f"split {seed}: AP7 {o['average_precision_7d']:.3f} (rule {r['average_precision_7d']:.3f}); "
              f"orders {o['orders']} recall {o['recall']:.2f} recall7 {o['recall_7d']:.2f} precision {o['precision']:.2f}; "
              f"at rule orders ({r['orders']}) recall7 {o['recall_7d_at_rule_orders']:.2f} (rule {r['recall_7d']:.2f}); "
              f"at precision 0.5 recall7 {o['recall_7d_at_precision_0_5']:.2f}; fit {res['fit_s']:.0f} s",
              file=sys.stderr, flush=True)
        splits.append(res)
        if i < n_splits - 1:   # a long run keeps what it has measured so far
            figures, _ = report(args, drives, sensors, cfg, rule, splits, t0, t_load)
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps(figures | {"partial": True}, indent=2, default=str))
    figures, summary = report(args, drives, sensors, cfg, rule, splits, t0, t_load)
    write(args.json, figures, summary)
    return 0


def report(args, drives, sensors, cfg, order_rule: OrderRule, splits, t0, t_load) -> tuple[dict, str]:
    n_splits = len(splits)
    ours = summarise(splits, "ours")
    rule = summarise(splits, "rule")
    figures = {
        "benchmark": "backblaze", "quick": args.quick, "data": str(args.data),
        "drives": len(drives), "failures": int(sum(d.failure_day is not None for d in drives)),
        "drive_days": int(sum(d.values.shape[0] for d in drives)), "sensors": sensors,
        "threshold": args.threshold,
        "order_rule": asdict(order_rule),
        "urgencies": list(args.urgencies) if args.choose else None,
        "splits": n_splits, "inner_of": args.inner_of,
        "config": {k: getattr(cfg, k) for k in CONFIG if k != "spec"} | {"spec": cfg.spec.to_dict(),
                                                                        "variant_prior": cfg.variant_prior},
        **ours, "rule": rule, "per_split": splits, "targets": TARGETS,
        "meets_targets": {k: bool(ours[k] >= v) for k, v in TARGETS.items()},
        "order_rules": {name: summarise(splits, name) for name in splits[0]["order_rules"]},
        "choose_inner_seeds": args.choose, "choose_rule_only": args.choose_rule_only, "choices": [s["choice"]["config"] + "/" + s["choice"]["name"]
                                                       for s in splits if "choice" in s],
        "load_s": t_load, "runtime_s": time.perf_counter() - t0,
    }
    where = "" if args.inner_of is None else f" inside split {args.inner_of}'s train drives"
    changed = [k for k in ("rise", "windows", "horizon_days", "variant_prior", "order_rise", "urgency",
                           "urgency_from_h", "choose", "choose_as_product")
               if getattr(args, k)]
    summary = (f"backblaze ({n_splits} splits{where}{''.join(f', {k} {getattr(args, k)}' for k in changed)}): AP7 {ours['average_precision_7d']:.3f} ± {ours['average_precision_7d_std']:.3f} "
               f"(rule {rule['average_precision_7d']:.3f}); at p>={args.threshold:g}: recall {ours['recall']:.2f}, "
               f"1-7 d {ours['recall_7d']:.2f}, precision {ours['precision']:.2f}, "
               f"{ours['false_orders_per_1000_drive_months']:.2f} false/1000 drive-months, lead {ours['median_lead_days']:.1f} d; "
               f"rule: recall {rule['recall']:.2f}, 1-7 d {rule['recall_7d']:.2f}, precision {rule['precision']:.3f}; "
               f"1-7 d recall at the rule's orders {ours['recall_7d_at_rule_orders']:.2f}, "
               f"at precision 0.5 {ours['recall_7d_at_precision_0_5']:.2f}")
    return figures, summary


if __name__ == "__main__":
    raise SystemExit(main())
