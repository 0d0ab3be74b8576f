"""Claims against runs: which runs each claim describes, what they measure, and the verdict.

The claims' schema is in claim_schema.py, the rules in judging.py; this module
matches, measures and judges, then controls the family-wise error over all
claims (Holm) and adds the power figures a user plans a GPU budget with.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from ..runs.grouping import (
    Comparison,
    Reader,
    compare,
    condition,
    describe,
    differing_settings,
    left_out_runs,
    matches,
    sortable,
)
from ..runs.rundirs import Run
from ..stats import CONFIDENCE, Estimate, estimate, is_number, p_value, welch_difference
from .claim_schema import (
    DEFAULT_MIN_EPOCHS,
    DEFAULT_MIN_SEEDS,
    condition_defaults,
    load_claims,
    metric_name,
    published_change,
    published_levels,
    tolerance,
    validate_claim,
)
from .claim_text import (
    interval,
    judged_change,
    levels_note,
    lower_is_better,
    number,
    published_text,
)
from .judging import (
    FAMILY_ERROR,
    INCONCLUSIVE,
    NOT_RUN,
    RULES,
    SUPPORTED,
    Evidence,
    judge,
    power_figures,
)

VERDICT_RULES = RULES
__all__ = ["NOT_RUN", "SUPPORTED", "VERDICT_RULES", "ClaimResult", "evaluate_claims",
           "load_claims", "metric_name"]


@dataclass
class ClaimResult:
    """A claim with what was measured and the verdict."""

    claim: dict[str, Any]
    verdict: str
    reason: str
    published: str
    measured: str = "not measured"
    evidence: Evidence | None = None
    notes: list[str] = field(default_factory=list)
    levels: dict[str, float | None] = field(default_factory=dict)
    runs: list[dict[str, Any]] = field(default_factory=list)  # the pairs used
    # Runs the claim would take but for a key they cannot tell or a protocol key's value.
    left_out: list[dict[str, str]] = field(default_factory=list)
    # Recomputes the effect at another confidence (Holm); None where nothing was measured.
    at_confidence: Callable[[float], Estimate] | None = None
    p_value: float | None = None
    holm_confidence: float | None = None
    adjusted_verdict: str | None = None
    adjusted_reason: str | None = None

    @property
    def n(self) -> int:
        return 0 if self.evidence is None else self.evidence.seeds

    @property
    def effect(self) -> Estimate | None:
        return None if self.evidence is None else self.evidence.effect

    def to_dict(self) -> dict[str, Any]:
        evidence = self.evidence
        detectable, needed = power_figures(evidence) if evidence else (None, None)
        return {
            "id": self.claim["id"], "source": self.claim["source"],
            "statement": self.claim["statement"], "kind": self.claim["kind"],
            "metric": metric_name(self.claim), "verdict": self.verdict, "reason": self.reason,
            "adjusted_verdict": self.adjusted_verdict or self.verdict,
            "adjusted_reason": self.adjusted_reason or self.reason,
            "p_value": self.p_value, "holm_confidence": self.holm_confidence,
            "published": self.published, "measured": self.measured, "n": self.n,
            "epochs": None if evidence is None else evidence.epochs,
            "published_change": None if evidence is None else evidence.change,
            "tolerance": tolerance(self.claim),
            "effect": None if self.effect is None else self.effect.to_dict(),
            "detectable_change": detectable, "seeds_to_decide": needed,
            "levels": self.levels, "runs": self.runs, "left_out": self.left_out,
            "notes": self.notes,
        }


def reader_for(claim: dict[str, Any]) -> Reader:
    """Read the claim's metric from a run; error_rate turns accuracy into error."""
    name = metric_name(claim)
    if claim["kind"] != "error_rate":
        return lambda run: run.metric(name)
    return lambda run: None if run.metric(name) is None else 1.0 - run.metric(name)


def _evidence(claim: dict[str, Any], effect: Estimate, change: float | None, seeds: int,
              epochs: int | None) -> Evidence:
    return Evidence(effect, change, tolerance(claim), seeds, epochs,
                    int(claim.get("min_seeds", DEFAULT_MIN_SEEDS)),
                    int(claim.get("min_epochs", DEFAULT_MIN_EPOCHS)))


def _signed(claim: dict[str, Any], values: list[float]) -> list[float]:
    return [-value for value in values] if lower_is_better(claim) else list(values)


def _used(comparison: Comparison) -> list[dict[str, Any]]:
    return [{"seed": pair.seed, "baseline": str(pair.baseline.path),
             "treatment": str(pair.treatment.path),
             "left_out": [str(run.path) for run in pair.left_out]}
            for pair in comparison.used]


def decide_between(comparisons: list[Comparison], claim: dict[str, Any]
                   ) -> tuple[Comparison | None, str]:
    """The one condition that decides, or None and why: conditions shorter than min_epochs
    never decide; more than one long enough is ambiguous (the claim must pin keys)."""
    min_epochs = int(claim.get("min_epochs", DEFAULT_MIN_EPOCHS))
    long_enough = [item for item in comparisons if (item.epochs or 0) >= min_epochs]
    if len(long_enough) > 1:
        keys = differing_settings(long_enough)
        pins = "; ".join(f"{key} ({', '.join(map(str, values))})" for key, values in keys.items())
        return None, (f"{len(long_enough)} conditions match the claim; pin one of them in its "
                      f"selectors by {pins}")
    return (long_enough[0] if long_enough else None), ""


def _others(comparisons: list[Comparison], chosen: Comparison | None,
            claim: dict[str, Any]) -> list[str]:
    notes = []
    for comparison in comparisons:
        if comparison is chosen:
            continue
        difference = comparison.difference()
        label = describe({key: value for key, value in comparison.settings.items()
                          if chosen is None or chosen.settings.get(key) != value})
        notes.append(f"also measured at {label}: change {number(difference.mean, claim, True)}, "
                     f"{interval(difference, claim)}, n = {comparison.n}, "
                     f"{comparison.epochs} epochs (does not decide)")
    return notes


def _judge_comparison(claim: dict[str, Any], comparisons: list[Comparison], change: float | None,
                      what: str, labels: tuple[str, str] = ("", "")) -> ClaimResult:
    """gain, error_rate and alpha_too_large: one paired comparison decides."""
    published = published_text(claim)
    chosen, ambiguity = decide_between(comparisons, claim)
    shown = chosen or max(comparisons, key=lambda item: (item.epochs or 0, item.n))
    signed = _signed(claim, shown.differences())
    effect = estimate(signed)
    evidence = _evidence(claim, effect, change, shown.n, shown.epochs)
    before, after = shown.baseline().mean, shown.treatment().mean
    levels = {"published_baseline": published_levels(claim)[0],
              "published_treatment": published_levels(claim)[1],
              "measured_baseline": before, "measured_treatment": after}
    if ambiguity:
        verdict, reason = INCONCLUSIVE, ambiguity
    else:
        verdict, reason = judge(evidence)
        reason = f"{what}: {reason}"
    difference = shown.difference()
    label = "error " if claim["kind"] == "error_rate" else ""
    measured = (f"{label}{labels[0]}{number(before, claim)} → {labels[1]}{number(after, claim)}; "
                "change "
                f"{number(difference.mean, claim, True)}, {interval(difference, claim)}, "
                f"n = {shown.n} paired seeds, {shown.epochs} epochs")
    result = ClaimResult(claim, verdict, reason, published, measured, evidence,
                         levels_note(claim, levels) + _others(comparisons, shown, claim),
                         levels, _used(shown))
    if not ambiguity:
        result.at_confidence = lambda level: estimate(signed, level)
    return result


def evaluate_gain(claim: dict[str, Any], runs: list[Run]) -> ClaimResult:
    """gain and error_rate: treatment versus baseline, paired by seed."""
    comparisons, why = compare(runs, claim["baseline"], claim["treatment"], reader_for(claim),
                               condition_defaults())
    if not comparisons:
        return ClaimResult(claim, NOT_RUN, why, published_text(claim))
    return _judge_comparison(claim, comparisons, judged_change(claim), "improvement")


def evaluate_alpha_too_large(claim: dict[str, Any], runs: list[Run]) -> ClaimResult:
    """alpha_too_large: the published value `small` does better than the largest value run
    (or `large`). Both are fixed before any accuracy is read."""
    key, small = claim.get("key", "alpha"), float(claim["small"])
    selector = claim["selector"]
    # Only the runs the claim's own selector describes: another method's alpha (CutMix at
    # 1.0, Manifold Mixup at 2) is no "large alpha" of this one.
    candidates = [run for run in runs if run.finished and is_number(run.settings.get(key))
                  and matches(run, selector, condition_defaults())]
    values = sorted({float(run.settings[key]) for run in candidates})
    large = float(claim["large"]) if is_number(claim.get("large")) else (
        values[-1] if values else None)
    if large is None or math.isclose(large, small) or large < small:
        return ClaimResult(claim, NOT_RUN, f"no run of {describe(selector)} with {key} above "
                           f"{small:g}", published_text(claim))
    selector = claim["selector"]
    comparisons, why = compare(runs, {**selector, key: large}, {**selector, key: small},
                               reader_for(claim), condition_defaults())
    if not comparisons:
        return ClaimResult(claim, NOT_RUN, why, published_text(claim))
    return _judge_comparison(claim, comparisons, published_change(claim),
                             f"advantage of {key}={small:g} over {key}={large:g}",
                             (f"{key}={large:g}: ", f"{key}={small:g}: "))


def paired_gain_differences(first: Comparison, second: Comparison,
                            claim: dict[str, Any]) -> list[float] | None:
    """Per seed, the gain under `larger` minus the gain under `smaller` (signed as the claim
    states), where both ran exactly the same seeds; else None (then Welch). Pairing by seed
    removes what a seed shares across the two conditions, and its t interval is exact,
    where Welch's with unequal spreads and 3 against 5 seeds covers about 93%."""
    larger = dict(zip([seed for seed, _, _ in first.pairs],
                      _signed(claim, first.differences()), strict=True))
    smaller = dict(zip([seed for seed, _, _ in second.pairs],
                       _signed(claim, second.differences()), strict=True))
    if set(larger) != set(smaller) or len(larger) != first.n or len(smaller) != second.n:
        return None
    return [larger[seed] - smaller[seed] for seed in sorted(larger, key=sortable)]


def evaluate_gain_larger(claim: dict[str, Any], runs: list[Run]) -> ClaimResult:
    """gain_larger: the paired gain under `larger` exceeds the one under `smaller` (paired by
    seed where both ran the same seeds, else Welch; the measured text says which)."""
    published = published_text(claim)
    reader, sides = reader_for(claim), []
    for overlay in (claim["larger"], claim["smaller"]):
        baseline, treatment = {**claim["baseline"], **overlay}, {**claim["treatment"], **overlay}
        comparisons, why = compare(runs, baseline, treatment, reader, condition_defaults())
        if not comparisons:
            return ClaimResult(claim, NOT_RUN, f"at {describe(overlay)}: {why}", published)
        sides.append(comparisons)
    split = set(claim["larger"]) | set(claim["smaller"])
    matched = [(first, second) for first in sides[0] for second in sides[1]
               if condition(first.settings, split) == condition(second.settings, split)]
    if not matched:
        why = f"no two conditions differ only in {', '.join(sorted(split))}"
        return ClaimResult(claim, NOT_RUN, why, published)
    min_epochs = int(claim.get("min_epochs", DEFAULT_MIN_EPOCHS))
    decisive = [pair for pair in matched
                if min(pair[0].epochs or 0, pair[1].epochs or 0) >= min_epochs]
    first, second = decisive[0] if decisive else max(
        matched, key=lambda pair: (min(pair[0].epochs or 0, pair[1].epochs or 0), pair[0].n))
    gains = _signed(claim, first.differences()), _signed(claim, second.differences())
    paired = paired_gain_differences(first, second, claim)
    if paired is not None:  # the same seeds on both sides: an exact paired t interval
        design = "paired by seed"

        def at_confidence(level: float) -> Estimate:
            return estimate(paired, level)
    else:
        design = "Welch: the two conditions ran different seeds"

        def at_confidence(level: float) -> Estimate:
            return welch_difference(*gains, confidence=level)
    effect = at_confidence(CONFIDENCE)
    epochs = min(first.epochs or 0, second.epochs or 0)
    change = published_change(claim)
    evidence = _evidence(claim, effect, change, min(first.n, second.n), epochs)
    if len(decisive) > 1:
        pins = differing_settings([item for pair in decisive for item in pair])
        verdict, reason = INCONCLUSIVE, (f"{len(decisive)} pairs of conditions match; pin one "
                                         f"by {'; '.join(pins)}")
    else:
        verdict, reason = judge(evidence)
        reason = f"difference of gains: {reason}"
    larger, smaller = describe(claim["larger"]), describe(claim["smaller"])
    measured = (f"gain at {larger}: {number(estimate(gains[0]).mean, claim, True)} (n = "
                f"{first.n}); at {smaller}: {number(estimate(gains[1]).mean, claim, True)} (n = "
                f"{second.n}); difference {number(effect.mean, claim, True)}, "
                f"{interval(effect, claim)} ({design}), {epochs} epochs")
    result = ClaimResult(claim, verdict, reason, published, measured, evidence, [], {},
                         _used(first) + _used(second))
    if len(decisive) <= 1:
        result.at_confidence = at_confidence
    return result


EVALUATORS: dict[str, Callable[[dict[str, Any], list[Run]], ClaimResult]] = {
    "gain": evaluate_gain,
    "error_rate": evaluate_gain,
    "gain_larger": evaluate_gain_larger,
    "alpha_too_large": evaluate_alpha_too_large,
}


def selectors(claim: dict[str, Any]) -> list[dict[str, Any]]:
    """Every selector a claim draws runs with (gain_larger: each side's, both overlays)."""
    if claim["kind"] == "alpha_too_large":
        return [claim["selector"]]
    overlays = ([claim["larger"], claim["smaller"]] if claim["kind"] == "gain_larger" else [{}])
    return [{**claim[side], **overlay} for overlay in overlays
            for side in ("baseline", "treatment")]


def holm(results: list[ClaimResult]) -> None:
    """Holm-adjusted verdicts: the rules on wider intervals, step-down by p-value."""
    for result in results:  # the family: claims whose runs are enough to decide
        evidence = result.evidence
        if result.at_confidence is not None and evidence is not None \
                and evidence.seeds >= evidence.min_seeds \
                and (evidence.epochs or 0) >= evidence.min_epochs:
            result.p_value = p_value(evidence.effect)
    tested = [result for result in results if result.p_value is not None]
    tested.sort(key=lambda result: (result.p_value, result.claim["id"]))
    count, stopped = len(tested), False
    for rank, result in enumerate(tested, start=1):
        level = 1 - FAMILY_ERROR / (count - rank + 1)
        wider = result.at_confidence(level)
        verdict, reason = judge(replace(result.evidence, effect=wider),
                                allow_zero_excluded=not stopped)
        # Holm rejects "no change" on either side: an interval wholly below 0 (a significant
        # loss) is a rejection as much as one above it, and the step-down goes on.
        rejected = wider.low is not None and wider.high is not None and (
            wider.low > 0 or wider.high < 0)
        stopped = stopped or not rejected
        result.holm_confidence = level
        result.adjusted_verdict = verdict
        result.adjusted_reason = f"at {100 * level:.2f}% (Holm, rank {rank} of {count}): {reason}"


def evaluate_claims(claims: Iterable[dict[str, Any]], runs: list[Run]) -> list[ClaimResult]:
    """A verdict for every claim, then the Holm-adjusted verdicts over all of them."""
    results = []
    for claim in claims:
        validate_claim(claim)
        result = EVALUATORS[claim["kind"]](claim, runs)
        result.left_out = left_out_runs(runs, selectors(claim), condition_defaults())
        if claim.get("notes"):
            result.notes.append(str(claim["notes"]).strip())
        results.append(result)
    holm(results)
    return results
