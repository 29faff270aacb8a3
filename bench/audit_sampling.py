"""Measurement: how well audits estimate live precision, how many a verdict needs, and what they cost.

1. **Estimate against truth.** The served model scores the held-out real images (a dataset's test split: what
   `python -m workflow run` trained it without); the share of its confident decisions (top probability at the
   template's ConfidenceThreshold or above) that are right is the true precision. A week of traffic is simulated
   as `--confident` confident decisions drawn, with replacement, from those real decisions; each gets its own
   identity and is audited by the filter's own choice (modelquality.audit.is_audited, the identity salted by the
   seed, so each seed is another draw of the audited share). For each audit rate and seed, the estimate and its
   95% Wilson interval are compared with the true precision: mean audits, bias, RMSE, how often the interval holds
   the truth (its coverage: 95% is the promise), mean width, and how often `monitoring quality` would have said
   degraded / ok / too few against the target.
2. **Audits to detect a drop** from 0.99 to 0.95 with the interval: the fewest audits for which a precision of
   0.95 gives an upper bound below 0.99 with probability 50%, 80% and 95% (exact binomial sums), with the false
   alarm rate at a true 0.99 for each; and stats.audits_needed(0.99), the fewest a verdict of "ok" needs.
3. **Cost per million classifications**: audits = rate x confident share x 1,000,000; reviewer hours at
   `--labels-per-minute` (a person's rate: the default 20 a minute, 3 s a label, is an assumption for a
   keyboard-driven binary choice, not a measurement; `python -m bench.review` measures the page's machine
   throughput, which is no person's) and `--reviewer-cost-per-hour`.

    .venv/bin/python -m bench.audit_sampling [--model-dir out/model] [--dataset out/dataset]
        [--rates 0.02 0.05 0.2] [--confident 10000] [--seeds 400] [--labels-per-minute 20]
        [--reviewer-cost-per-hour 25] [--out FILE]

Statistics only (no timing): the numbers do not depend on the machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.results import model_sha256_of, record, this_command
from common import settings
from modelquality.audit import is_audited
from modelquality.stats import Z_95, audits_needed, wilson_interval

DEFAULT_RATES = (0.02, 0.05, 0.2)


def detection_probability(trials: int, precision: float, target: float, z: float = Z_95) -> float:
    """P(the Wilson upper bound of k of `trials` is below `target`) when k ~ Binomial(trials, precision), exactly:
    the upper bound grows with k, so it is the binomial CDF at the largest k that still alarms."""
    alarming = [k for k in range(trials + 1) if wilson_interval(k, trials, z)[1] < target]
    if not alarming:
        return 0.0
    last = max(alarming)
    log_terms = [math.lgamma(trials + 1) - math.lgamma(k + 1) - math.lgamma(trials - k + 1)
                 + (k * math.log(precision) if k else 0.0)
                 + ((trials - k) * math.log1p(-precision) if trials - k else 0.0) for k in range(last + 1)]
    peak = max(log_terms)
    return min(1.0, math.exp(peak) * sum(math.exp(term - peak) for term in log_terms))


def audits_to_detect(before: float, after: float, power: float, limit: int = 5000) -> dict[str, Any]:
    """The fewest audits for which a precision of `after` alarms (upper bound below `before`) with probability
    `power`, and the false alarm rate at a true precision of `before` with that many."""
    for trials in range(1, limit + 1):
        detected = detection_probability(trials, after, before)
        if detected >= power:
            return {"power": power, "audits": trials, "detected": round(detected, 4),
                    "false_alarm_at_before": round(detection_probability(trials, before, before), 4)}
    raise ValueError(f"more than {limit} audits")


def simulate(correct: np.ndarray, rate: float, confident: int, seeds: int, target: float) -> dict[str, Any]:
    """Audit `confident` decisions resampled from the real ones (`correct`: one bool per real confident decision) at
    `rate`, once per seed; the estimate against the true precision."""
    truth = float(correct.mean())
    needed = audits_needed(target)
    estimates, errors, widths, counts, covered = [], [], [], [], 0
    verdicts = {"degraded": 0, "ok": 0, "too few audits": 0}
    for seed in range(seeds):
        drawn = np.random.default_rng(seed).integers(0, len(correct), confident)
        audited = [index for number, index in enumerate(drawn)
                   if is_audited(hashlib.sha256(f"{seed}:{number}".encode()).hexdigest(), rate)]
        counts.append(len(audited))
        if not audited:
            verdicts["too few audits"] += 1
            continue
        right = int(correct[audited].sum())
        low, high = wilson_interval(right, len(audited))
        estimate = right / len(audited)
        estimates.append(estimate)
        errors.append(estimate - truth)
        widths.append(high - low)
        covered += low <= truth <= high
        if high < target:
            verdicts["degraded"] += 1
        elif needed is not None and len(audited) >= needed:
            verdicts["ok"] += 1
        else:
            verdicts["too few audits"] += 1
    judged = len(estimates)
    return {"rate": rate, "true_precision": round(truth, 4), "confident_decisions": confident, "seeds": seeds,
            "mean_audits": round(statistics.mean(counts), 1),
            "mean_estimate": round(statistics.mean(estimates), 4) if judged else None,
            "bias": round(statistics.mean(errors), 4) if judged else None,
            "rmse": round(math.sqrt(statistics.mean(e * e for e in errors)), 4) if judged else None,
            "interval_coverage": round(covered / judged, 3) if judged else None,
            "mean_interval_width": round(statistics.mean(widths), 4) if judged else None,
            "verdicts": verdicts}


def cost_per_million(rate: float, confident_share: float, labels_per_minute: float,
                     cost_per_hour: float) -> dict[str, Any]:
    audits = rate * confident_share * 1_000_000
    hours = audits / labels_per_minute / 60
    reviews = (1 - confident_share) * 1_000_000  # the low-confidence items people are asked about anyway
    return {"rate": rate, "audits": round(audits), "reviewer_hours": round(hours, 1),
            "cost": round(hours * cost_per_hour, 2), "low_confidence_items": round(reviews),
            "added_to_the_review_work": round(audits / reviews, 4) if reviews else None}


def served_decisions(model_dir: Path, dataset: Path, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(confident, correct) per test image of the dataset, as the served model decides them."""
    from common.artefacts import model_class_names
    from data_prep.training.data import load_evaluation_set
    from data_prep.training.evaluate import aligned_probabilities

    names = model_class_names(model_dir)
    images = load_evaluation_set(dataset, names)
    probabilities = aligned_probabilities(model_dir, images.images, names)
    return probabilities.max(1) >= threshold, probabilities.argmax(1) == images.labels


def measure(confident: np.ndarray, correct: np.ndarray, *, rates: Sequence[float], traffic: int, seeds: int,
            target: float, labels_per_minute: float, cost_per_hour: float) -> dict[str, Any]:
    share = float(confident.mean())
    return {
        "test_images": int(len(confident)), "confident_share": round(share, 4),
        "true_precision": round(float(correct[confident].mean()), 4), "target_precision": target,
        "estimates": [simulate(correct[confident], rate, traffic, seeds, target) for rate in rates],
        "detect_drop_0.99_to_0.95": [audits_to_detect(0.99, 0.95, power) for power in (0.5, 0.8, 0.95)],
        "audits_for_a_verdict_of_ok_at_0.99": audits_needed(0.99),
        "labels_per_minute": labels_per_minute, "reviewer_cost_per_hour": cost_per_hour,
        "cost_per_million": [cost_per_million(rate, share, labels_per_minute, cost_per_hour) for rate in rates],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=settings.DEFAULT_LAYOUT.model)
    parser.add_argument("--dataset", type=Path, default=settings.DEFAULT_LAYOUT.dataset)
    parser.add_argument("--rates", type=float, nargs="+", default=list(DEFAULT_RATES))
    parser.add_argument("--confident", type=int, default=10_000, help="Confident decisions in the simulated week.")
    parser.add_argument("--seeds", type=int, default=400)
    parser.add_argument("--labels-per-minute", type=float, default=20.0)
    parser.add_argument("--reviewer-cost-per-hour", type=float, default=25.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    confident, correct = served_decisions(args.model_dir, args.dataset, settings.confidence_threshold())
    result = measure(confident, correct, rates=args.rates, traffic=args.confident, seeds=args.seeds,
                     target=settings.target_precision(), labels_per_minute=args.labels_per_minute,
                     cost_per_hour=args.reviewer_cost_per_hour)
    print(f"served model on {result['test_images']} real held-out images: {result['confident_share']:.1%} confident, "
          f"true precision of confident decisions {result['true_precision']:.4f} (target {result['target_precision']})")
    print(f"{'rate':>5} {'audits':>7} {'estimate':>9} {'bias':>8} {'RMSE':>7} {'coverage':>9} {'width':>7}  verdicts")
    for row in result["estimates"]:
        print(f"{row['rate']:>5} {row['mean_audits']:>7} {row['mean_estimate']:>9} {row['bias']:>8} {row['rmse']:>7} "
              f"{row['interval_coverage']:>9} {row['mean_interval_width']:>7}  {row['verdicts']}")
    for row in result["detect_drop_0.99_to_0.95"]:
        print(f"detect 0.99 -> 0.95 with probability {row['power']}: {row['audits']} audits (false alarm at 0.99: "
              f"{row['false_alarm_at_before']})")
    print(f"a verdict of ok at 0.99 needs {result['audits_for_a_verdict_of_ok_at_0.99']} audits")
    for row in result["cost_per_million"]:
        print(f"rate {row['rate']}: {row['audits']} audits per million classifications, {row['reviewer_hours']} "
              f"reviewer hours at {args.labels_per_minute} labels a minute, {row['cost']} at "
              f"{args.reviewer_cost_per_hour} an hour (+{row['added_to_the_review_work']:.1%} on the "
              f"{row['low_confidence_items']} low-confidence items)")
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    record_result(result, args.labels_per_minute, args.reviewer_cost_per_hour, model_sha256_of(args.model_dir))


def record_result(result: dict[str, Any], labels_per_minute: float, cost_per_hour: float, model_sha256: str) -> None:
    """The three rows the Measured page quotes: the estimate per audit rate (and what `monitoring quality` would
    have said against the target), the audits a drop needs, the cost (at an assumed labelling rate)."""
    command = this_command("bench.audit_sampling")
    first = result["estimates"][0]
    target = result["target_precision"]

    def verdicts(row: dict[str, Any]) -> str:
        counts = row["verdicts"]
        return (f"against the target {target}: degraded in {counts['degraded']}, ok in {counts['ok']}, too few "
                f"audits in {counts['too few audits']} of {row['seeds']} seeds")

    estimates = "; ".join(
        f"AuditRate {row['rate']}: {row['mean_audits']} audits, mean estimate {row['mean_estimate']} (bias "
        f"{row['bias']:+}), RMSE {row['rmse']}, the 95% Wilson interval held the truth in "
        f"{row['interval_coverage']:.0%} of seeds, width {row['mean_interval_width']}, {verdicts(row)}"
        for row in result["estimates"])
    record("audit_sampling_estimate",
           what=f"live quality: the audit estimate against the true precision {result['true_precision']:.4f} of the "
                f"served model's confident decisions ({result['confident_share']:.1%} of decisions) on "
                f"{result['test_images']} real held-out test images, {first['confident_decisions']:,} confident "
                f"decisions resampled from them, each audited by the filter's own choice, {first['seeds']} seeds",
           result=estimates, command=command + " (statistics, not timing)", model_sha256=model_sha256,
           quotes={"rmse": per_rate(result["estimates"], lambda row: f"RMSE {row['rmse']}")})
    detect = result["detect_drop_0.99_to_0.95"]
    record("audit_sampling_detection", what="audits needed to detect a drop of precision from 0.99 to 0.95",
           result=", ".join(f"{row['audits']} audits detect it with probability {row['power']} (a model truly at "
                            f"0.99 alarms {row['false_alarm_at_before']:.1%} of the time)" for row in detect)
           + f"; a verdict of ok at 0.99 needs {result['audits_for_a_verdict_of_ok_at_0.99']} audits",
           command=command, model_sha256=model_sha256,
           quotes={"audits": " / ".join(str(row["audits"]) for row in detect) + " audits for a "
                             + " / ".join(f"{row['power']:.0%}" for row in detect) + " chance"})
    record("audit_sampling_cost",
           what=f"live quality: added reviewer cost per million classifications ({result['confident_share']:.1%} "
                f"confident; an **assumed** {labels_per_minute:g} labels a minute and ${cost_per_hour:g} an hour, "
                "not measured on people)",
           result="; ".join(f"AuditRate {row['rate']}: {row['audits']:,} audits, {row['reviewer_hours']} reviewer "
                            f"hours, ${row['cost']:,}, +{row['added_to_the_review_work']:.1%} on the "
                            f"{row['low_confidence_items']:,} low-confidence items"
                            for row in result["cost_per_million"]),
           command=command, model_sha256=model_sha256,
           quotes={"cost": per_rate(result["cost_per_million"], lambda row: f"${row['cost']:,.0f}")})


def per_rate(rows: list[dict[str, Any]], shown: Callable[[dict[str, Any]], str]) -> str:
    """One short quote over the audit rates, e.g. `RMSE 0.0123 / RMSE 0.008 at AuditRate 0.02 / 0.05`."""
    return " / ".join(shown(row) for row in rows) + " at AuditRate " + " / ".join(str(row["rate"]) for row in rows)

if __name__ == "__main__":
    main()
