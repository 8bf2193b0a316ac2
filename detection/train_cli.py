"""``prognos train``: learn from the platform's own history (TimescaleDB), per product model,
the failure-mode signatures detection matches anomalies against (``learned_signatures``, see
:mod:`detection.signatures`), the alarm levels at which detection opens orders (``alarm_levels``,
:mod:`detection.levels`: the stored telemetry replayed through the detection service's code,
against the failures that followed) and the failure predictor (time to failure with its interval,
probability of failure within the horizon), stored as a new version under ``settings.model_dir``,
with the order rule that opens predictive orders from its p_fail (``order_rules``,
:mod:`detection.prediction.order_choice`: chosen on held-out halves of the assets when the history
holds at least ``MIN_FAILURES`` failures, else none and orders come from detection's evidence);
then refit the repair-time model (:mod:`detection.mttr`, stored in ``mttr_models``) from the repairs.

    prognos train                          # every product model with devices
    prognos train --model PMP-200 --horizon-h 336 --since 2026-08-01
    prognos train --signatures-only        # the signatures, not the predictor nor the MTTR model
    prognos train --detection-only         # the signatures and the alarm levels

Exit status: 0 when every requested model was trained, 1 when some had too little history
(no failures yet; the others are still trained and stored), 2 on bad arguments or an
unreachable database.
"""

from __future__ import annotations

import argparse
import functools
import logging
import sys
from datetime import datetime, timezone

import psycopg
from tqdm import tqdm

from detection import levels, signatures
from detection.mttr import store as mttr_store
from detection.prediction import order_choice, order_rules, store
from detection.prediction.history import SOURCES, load_history, product_models
from detection.prediction.training import InsufficientHistory, TrainConfig, train
from prognos.config import Settings, get_settings
from prognos.logs import event, setup_logging

log = logging.getLogger("prognos.train")


def _timestamp(text: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=timezone.utc)


def _positive(kind):
    def parse(text: str):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {kind.__name__}: {text!r}") from None
        if not v > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return v
    return parse


def _fraction(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= v < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text}")
    return v


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="prognos train", description=__doc__.split("\n\n")[0])
    p.add_argument("--model", action="append", dest="models", metavar="MODEL_ID",
                   help="product model to train (repeatable; default: every model with devices)")
    p.add_argument("--horizon-h", type=_positive(float), default=336.0,
                   help="failure-within-horizon classifier horizon in hours (default 336)")
    p.add_argument("--rul-cap-h", type=_positive(float), default=720.0,
                   help="remaining-life target cap in hours (piecewise-linear target; default 720)")
    p.add_argument("--stride-h", type=_positive(int), default=6, help="hours between training rows (default 6)")
    p.add_argument("--source", choices=SOURCES, default="telemetry",
                   help="hourly means from raw telemetry (default) or from ingest's telemetry_1h rollup")
    p.add_argument("--since", type=_timestamp, help="use telemetry from this time (ISO 8601)")
    p.add_argument("--until", type=_timestamp, help="use telemetry before this time (ISO 8601)")
    p.add_argument("--holdout", type=_fraction, default=0.25,
                   help="share of assets held out for the metrics in metadata.json (default 0.25)")
    p.add_argument("--members", type=_positive(int), default=3, help="boosting models per ensemble (default 3)")
    p.add_argument("--max-iter", type=_positive(int), default=200, help="boosting iterations (default 200)")
    p.add_argument("--regimes", type=int, default=4,
                   help="load bands for regime-normalised sensors (default 4; 0 turns them off)")
    p.add_argument("--threads", type=_positive(int), default=1,
                   help="OpenMP threads for boosting (default 1: on a busy machine more threads spin)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model-dir", help="where versions are stored (default: settings.model_dir)")
    p.add_argument("--signatures-only", action="store_true",
                   help="learn the failure-mode signatures only, not the predictor nor the MTTR model")
    p.add_argument("--detection-only", action="store_true",
                   help="learn what detection uses (signatures and alarm levels), not the predictor nor the MTTR model")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv: list[str] | None = None, *, settings: Settings | None = None) -> int:
    args = parser().parse_args(argv)
    setup_logging()
    settings = settings or get_settings()
    if args.since and args.until and args.since >= args.until:
        print("prognos train: --since must be before --until", file=sys.stderr)
        return 2
    if args.regimes < 0:
        print("prognos train: --regimes must be >= 0", file=sys.stderr)
        return 2
    model_dir = args.model_dir or settings.model_dir
    cfg = TrainConfig(horizon_h=args.horizon_h, rul_cap_h=args.rul_cap_h, stride_h=args.stride_h,
                      holdout=args.holdout, n_members=args.members, max_iter=args.max_iter,
                      random_state=args.seed, threads=args.threads, regimes=args.regimes)
    try:
        conn = psycopg.connect(settings.dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        print(f"prognos train: cannot reach the database: {exc}", file=sys.stderr)
        return 2
    status = 0
    with conn:
        models = args.models or product_models(conn)
        if not models:
            print("prognos train: no product model has devices yet; nothing to train", file=sys.stderr)
            return 1
        for model_id in models:
            bar = functools.partial(tqdm, desc=f"{model_id} telemetry", unit="asset",
                                    disable=args.quiet, file=sys.stderr)
            try:
                history = load_history(conn, model_id, args.since, args.until, progress=bar, source=args.source)
                event(log, "train_started", model=model_id, assets=len(history.assets))
                learned = signatures.learn(history)
                signatures.save(conn, model_id, learned)
                event(log, "signatures_learned", model=model_id,
                      modes={m: {"events": s.events, "signature": s.signature} for m, s in learned.items()})
                print(f"{model_id} signatures: " + (", ".join(
                    f"{m} ({s.events} failures{'' if signatures.usable(s) else ', too few: directions kept'})"
                    for m, s in sorted(learned.items())) or "no failure with telemetry before it yet"))
                if args.signatures_only or args.detection_only:
                    continue
                predictor, meta = train(history, cfg, progress=functools.partial(
                    tqdm, desc=f"{model_id} features", unit="asset", disable=args.quiet, file=sys.stderr))
            except (LookupError, InsufficientHistory) as exc:
                event(log, "train_skipped", logging.WARNING, model=model_id, reason=str(exc))
                print(f"prognos train: {model_id}: not trained: {exc}", file=sys.stderr)
                status = 1
                continue
            meta["data"]["source"] = args.source
            path = store.save(model_dir, predictor, meta)
            event(log, "model_saved", model=model_id, version=predictor.version, path=str(path),
                  rows=meta["data"]["rows"], metrics=meta["metrics_holdout"])
            m = meta["metrics_holdout"]
            mae = f"{m['rul_mae_h']:.0f} h" if "rul_mae_h" in m else "n/a"
            auc = f"{m['horizon_auc']:.3f}" if "horizon_auc" in m else "n/a"
            print(f"{model_id} {predictor.version}: {len(history.assets)} assets, "
                  f"{sum(meta['data']['failures'].values())} failures, {meta['data']['rows']} rows, "
                  f"held-out RUL MAE {mae}, horizon AUC {auc} -> {path}")
            _choose_order_rule(conn, history, cfg, predictor.version, args)
        if args.signatures_only:
            return status
        _learn_levels(settings, models, args)
        if args.detection_only:
            return status
        mttr = mttr_store.fit_from_db(conn, as_of=args.until)
        version = mttr_store.save(conn, mttr)
        s = mttr.summary_
        routes = [g["route"] for g in s["groups"].values()]
        print(f"MTTR model {version}: {s['repairs']} repairs ({s['censored']} censored, "
              f"{s.get('recent_excluded', 0)} too recent), {routes.count('group')} model/mode groups "
              f"calibrated on their own repairs, {routes.count('manual')} on the manual's figure")
    return status


def _choose_order_rule(conn, history, cfg: TrainConfig, version: str, args) -> None:
    """Choose the model's order rule on its history (``order_rules``, applied to the predictor's
    p_fail by the detection service), or drop the stored one when the history is too thin."""
    chosen = order_choice.choose_for_model(history, cfg, progress=functools.partial(
        tqdm, desc=f"{history.model_id} order rule: inner runs", unit="run", disable=args.quiet, file=sys.stderr))
    if isinstance(chosen, str):
        dropped = order_rules.delete(conn, history.model_id)
        event(log, "order_rule_skipped", model=history.model_id, reason=chosen, dropped=dropped)
        print(f"{history.model_id} order rule: none ({chosen}); predictive orders from detection's evidence only")
        return
    order_rules.save(conn, chosen, version)
    h = chosen.held_out
    event(log, "order_rule_chosen", model=history.model_id, rule=chosen.name, failures=chosen.failures,
          runs=chosen.runs, held_out={k: h[k] for k in order_choice.CHOICE_KEYS})
    print(f"{history.model_id} order rule: {chosen.name} ({chosen.rule.describe('h')}) "
          f"(of {chosen.candidates}, on {chosen.failures} failures, {chosen.runs} inner runs); held out: recall within "
          f"the horizon {h['recall_h_at_budget']:.2f} at as many orders as failures (first crossing "
          f"{h['first_crossing']['recall_h_at_budget']:.2f}), at the threshold {h['orders']:.1f} orders, "
          f"precision {h['precision']:.2f}")


def _learn_levels(settings: Settings, models: list[str], args) -> None:
    """Replay the history through detection and learn each model's alarm levels (``alarm_levels``)."""
    from detection.service import ServiceConfig       # the service imports the training modules' peers

    config = ServiceConfig(risk_threshold=settings.risk_order_threshold)
    bar = functools.partial(tqdm, desc="alarm levels: replay", unit="chunk", disable=args.quiet, file=sys.stderr)
    replays = levels.replay(settings, config, models, since=args.since, until=args.until, progress=bar)
    rule, choice = levels.choose_rule(replays, config, progress=functools.partial(
        tqdm, desc="alarm levels: inner split", unit="model", disable=args.quiet, file=sys.stderr))
    held = choice["held_out"]
    print(f"alarm levels rule (chosen on held-out assets, {choice['folds']} parts of the history): precision target "
          f"{rule.precision_target:g}, ties to the {rule.tie} level, a running life's order false once older than "
          f"the {rule.censor_q:g} Kaplan-Meier quantile of true leads (at least {levels.HORIZON_H:g} h); held out: {held['caught']}/{held['failures']} "
          f"failures caught >= {levels.LEAD_H:g} h ahead, {held['true']}/{held['orders']} orders true")
    with psycopg.connect(settings.dsn, autocommit=True) as conn:
        for model_id, r in replays.items():
            lv = levels.learn(r, config, rule=rule)
            lv.detail["rule_choice"] = choice
            levels.save(conn, lv)
            event(log, "levels_learned", model=model_id, tau_h=lv.tau_h, min_mode_score=lv.min_mode_score,
                  evidence_learned=lv.evidence_learned,
                  modes={m: {"level": v.level, "learned": v.learned, "failures": v.failures} for m, v in lv.modes.items()})
            print(f"{model_id} alarm levels: tau {lv.tau_h:g} h, mode score {lv.min_mode_score:g}"
                  f"{'' if lv.evidence_learned else ' (the defaults: not every mode has a learned level)'}; " + ", ".join(
                      f"{m} {v.level:.3g} ({v.failures} failures, {v.caught} caught >= {levels.LEAD_H:g} h ahead, "
                      f"{v.true_orders}/{v.orders} orders true)" if v.learned else
                      f"{m} {v.level:.3g} (default: {v.failures} failures, "
                      + (f"no level reached precision {rule.precision_target:g}"
                         if m in lv.detail.get("no_level_met_target", ()) else
                         f"fewer than {levels.MIN_FAILURES}") + ")"
                      for m, v in sorted(lv.modes.items())))


if __name__ == "__main__":
    raise SystemExit(main())
