"""Published claims as data, and the rules that turn measurements into verdicts.

Claims live in mixup_bench/claims/*.yaml, so checking one more claim (lambda
clamping, label smoothing, an alpha schedule, a lower ECE) is a few lines of
YAML that name config keys, not new code. Each file holds `claims:`, a list
of mappings:

    id, source, statement   text; the statement is what the source says
    kind                    gain | error_rate | gain_larger | alpha_too_large
    metric                  summary.json key, else the last metrics.jsonl line's
                            key (default final_test_acc; error_rate: last10_test_acc)
    lower_is_better         default false (error_rate: true, on the error 1 - acc)
    percent                 show values x100 (default true)
    min_epochs, min_seeds   below these a verdict is inconclusive (defaults 0, 2)
    published               text shown as the published value
    published_baseline,     numbers as printed (percent when `percent`);
    published_treatment     gain and error_rate only
    notes                   text shown under the claim
    gain, error_rate:  baseline, treatment        selectors
    gain_larger:       baseline, treatment, larger, smaller
                       (larger/smaller are added to both; the claim is that
                       the gain under `larger` exceeds the gain under `smaller`)
    alpha_too_large:   selector, key (default alpha), large, small (optional:
                       default the largest value run, and the best smaller one)

A selector maps dotted config keys to values: numbers compare with a
tolerance, text case-insensitively, a list means "any of", null matches a
missing or null key. Runs are paired by seed with the baseline run that has
the same settings apart from the keys the two selectors disagree on (and all
aug.* keys and alpha when aug.name differs). Rules: see VERDICT_RULES.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mixup_bench.grouping import (
    Comparison,
    Reader,
    compare,
    condition,
    describe,
    matches,
    strongest,
)
from mixup_bench.rundirs import Run
from mixup_bench.stats import Estimate, estimate, is_number, welch_difference

SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_RUN = (
    "supported",
    "contradicted",
    "inconclusive",
    "not run",
)
CLAIM_PACKAGE = "mixup_bench.claims"
REQUIRED_KEYS = {
    "gain": ("baseline", "treatment"),
    "error_rate": ("baseline", "treatment"),
    "gain_larger": ("baseline", "treatment", "larger", "smaller"),
    "alpha_too_large": ("selector",),
}
VERDICT_RULES = """\
- The measured effect is the mean over seeds of paired differences (treatment
  run minus the baseline run with the same settings and seed), signed so that
  positive means better (for error rates and other lower-is-better metrics,
  lower). `gain_larger` compares two such mean gains with Welch's interval.
- 95% confidence intervals use Student's t with n - 1 degrees of freedom
  (t = 12.706, 4.303, 3.182, 2.776 for 2, 3, 4, 5 seeds; 1.96 beyond 30).
- **supported**: the whole interval lies above 0.
- **contradicted**: the whole interval lies at or below 0.
- **inconclusive**: the interval includes 0, or fewer paired seeds than the
  claim's `min_seeds` (default 2), or runs shorter than its `min_epochs`; the
  measurement is still shown.
- **not run**: no finished runs match the claim's selectors, or none pair up.
- Whether the published value lies inside the measured interval is noted but
  does not change the verdict: a gain can be real and still smaller than published.
"""


def load_claims(extra_files: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """The packaged claims, then those in `extra_files`; a bad claim raises ValueError/TypeError."""
    sources = [
        (entry.name, entry.read_text(encoding="utf-8"))
        for entry in sorted(
            (
                item
                for item in resources.files(CLAIM_PACKAGE).iterdir()
                if item.name.endswith(".yaml")
            ),
            key=lambda item: item.name,
        )
    ]
    sources += [(str(path), Path(path).read_text(encoding="utf-8")) for path in extra_files]
    claims: list[dict[str, Any]] = []
    for origin, text in sources:
        try:
            document = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:
            raise ValueError(f"{origin}: not valid YAML: {error}") from error
        entries = document.get("claims", []) if isinstance(document, dict) else document
        for claim in entries:
            validate_claim(claim, origin)
            if any(claim["id"] == other["id"] for other in claims):
                raise ValueError(f"{origin}: duplicate claim id {claim['id']!r}")
            claims.append(claim)
    return claims


def validate_claim(claim: Any, origin: str = "claim") -> None:
    """Refuse a claim the rules cannot evaluate, saying what is wrong."""
    if not isinstance(claim, dict):
        raise TypeError(f"{origin}: a claim must be a mapping, got {claim!r}")
    missing = [key for key in ("id", "source", "statement", "kind") if key not in claim]
    if missing:
        raise ValueError(f"{origin}: claim {claim.get('id', '?')!r} lacks {', '.join(missing)}")
    if claim["kind"] not in REQUIRED_KEYS:
        raise ValueError(
            f"{origin}: claim {claim['id']!r} has unknown kind {claim['kind']!r};"
            f" valid: {', '.join(REQUIRED_KEYS)}"
        )
    for key in REQUIRED_KEYS[claim["kind"]]:
        if not isinstance(claim.get(key), dict):
            raise TypeError(f"{origin}: claim {claim['id']!r} needs a mapping {key!r}")


def judge(
    improvement: Estimate, epochs: int | None, counts: list[int], claim: dict[str, Any], what: str
) -> tuple[str, str]:
    """Apply VERDICT_RULES to an effect signed so that positive means the claim holds."""
    min_seeds, min_epochs = int(claim.get("min_seeds", 2)), int(claim.get("min_epochs", 0))
    if min(counts) < min_seeds:
        return INCONCLUSIVE, f"only {min(counts)} paired seed(s); at least {min_seeds} needed"
    if min_epochs and (epochs is None or epochs < min_epochs):
        return INCONCLUSIVE, f"runs shorter than {min_epochs} epochs ({epochs} completed)"
    if improvement.low is None or improvement.high is None:
        return INCONCLUSIVE, f"no confidence interval for the {what}"
    if improvement.low > 0:
        return SUPPORTED, f"the 95% CI of the {what} lies above 0"
    if improvement.high <= 0:
        return CONTRADICTED, f"the 95% CI of the {what} lies at or below 0"
    return INCONCLUSIVE, f"the 95% CI of the {what} includes 0"


@dataclass
class ClaimResult:
    """A claim with what was measured and the verdict."""

    claim: dict[str, Any]
    verdict: str
    reason: str
    published: str
    measured: str = "not measured"
    n: int = 0
    effect: Estimate | None = None  # signed so that positive means the claim holds
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.claim["id"],
            "source": self.claim["source"],
            "statement": self.claim["statement"],
            "kind": self.claim["kind"],
            "metric": metric_name(self.claim),
            "verdict": self.verdict,
            "reason": self.reason,
            "published": self.published,
            "measured": self.measured,
            "n": self.n,
            "effect": None if self.effect is None else self.effect.to_dict(),
            "notes": self.notes,
        }


def metric_name(claim: dict[str, Any]) -> str:
    return claim.get(
        "metric", "last10_test_acc" if claim["kind"] == "error_rate" else "final_test_acc"
    )


def lower_is_better(claim: dict[str, Any]) -> bool:
    return bool(claim.get("lower_is_better", claim["kind"] == "error_rate"))


def reader_for(claim: dict[str, Any]) -> Reader:
    """Read the claim's metric from a run; error_rate turns accuracy into error."""
    name = metric_name(claim)
    if claim["kind"] != "error_rate":
        return lambda run: run.metric(name)
    return lambda run: None if run.metric(name) is None else 1.0 - run.metric(name)


def number(value: float | None, claim: dict[str, Any], signed: bool = False) -> str:
    """A value in the claim's display unit: percent (points for a change) or raw."""
    if value is None:
        return "n/a"
    if claim.get("percent", True):
        return f"{100 * value:+.2f} points" if signed else f"{100 * value:.2f}%"
    return f"{value:+.4f}" if signed else f"{value:.4f}"


def interval(effect: Estimate, claim: dict[str, Any]) -> str:
    if effect.low is None or effect.high is None:
        return "95% CI n/a"
    scale = 100 if claim.get("percent", True) else 1
    return f"95% CI [{scale * effect.low:+.2f}, {scale * effect.high:+.2f}]"


def change_text(comparison: Comparison, claim: dict[str, Any]) -> str:
    """'change +1.20 points, 95% CI [...], n = 3 paired seeds, 200 epochs'."""
    difference = comparison.difference()
    return (
        f"change {number(difference.mean, claim, True)}, {interval(difference, claim)}, "
        f"n = {comparison.n} paired seeds, {comparison.epochs} epochs"
    )


def also_measured(
    comparisons: list[Comparison], chosen: Comparison, claim: dict[str, Any]
) -> list[str]:
    """A note for each comparison that did not decide the verdict (e.g. shorter runs)."""
    notes = []
    for comparison in comparisons:
        if comparison is not chosen:
            settings = comparison.settings.items()
            differing = {key: value for key, value in settings if chosen.settings.get(key) != value}
            notes.append(
                f"also measured at {describe(differing)}: {change_text(comparison, claim)}"
            )
    return notes


def published_change(claim: dict[str, Any]) -> tuple[str, float | None]:
    """Text of the published value, and the published change in file units."""
    before, after = claim.get("published_baseline"), claim.get("published_treatment")
    if not (is_number(before) and is_number(after)):
        return str(claim.get("published", "not stated")), None
    scale = 100 if claim.get("percent", True) else 1
    unit, points = ("%", " points") if scale == 100 else ("", "")
    label = "error " if claim["kind"] == "error_rate" else ""
    change = after - before
    return f"{label}{before:g}{unit} → {after:g}{unit} ({change:+.2f}{points})", change / scale


def placement(change: float, difference: Estimate, claim: dict[str, Any]) -> str | None:
    """Where the published change lies relative to the measured interval."""
    if difference.low is None or difference.high is None:
        return None
    place = "inside"
    if change > difference.high:
        place = "above"
    elif change < difference.low:
        place = "below"
    return f"the published change {number(change, claim, True)} lies {place} the measured 95% CI"


def evaluate_gain(claim: dict[str, Any], runs: list[Run]) -> ClaimResult:
    """gain and error_rate: treatment versus baseline, paired by seed."""
    published, change = published_change(claim)
    comparisons, why = compare(runs, claim["baseline"], claim["treatment"], reader_for(claim))
    if not comparisons:
        return ClaimResult(claim, NOT_RUN, why, published)
    chosen = strongest(comparisons)
    difference = chosen.difference()
    effect = difference.negated() if lower_is_better(claim) else difference
    verdict, reason = judge(effect, chosen.epochs, [chosen.n], claim, "improvement")
    label = "error " if claim["kind"] == "error_rate" else ""
    before, after = number(chosen.baseline().mean, claim), number(chosen.treatment().mean, claim)
    measured = f"{label}{before} → {after}; {change_text(chosen, claim)}"
    notes = also_measured(comparisons, chosen, claim)
    place = None if change is None else placement(change, difference, claim)
    if place:
        notes.insert(0, place)
    return ClaimResult(claim, verdict, reason, published, measured, chosen.n, effect, notes)


def evaluate_gain_larger(claim: dict[str, Any], runs: list[Run]) -> ClaimResult:
    """gain_larger: the paired gain under `larger` exceeds the one under `smaller` (Welch)."""
    published = str(claim.get("published", "not stated"))
    reader, lower = reader_for(claim), lower_is_better(claim)
    sides = []
    for overlay in (claim["larger"], claim["smaller"]):
        baseline, treatment = {**claim["baseline"], **overlay}, {**claim["treatment"], **overlay}
        comparisons, why = compare(runs, baseline, treatment, reader)
        if not comparisons:
            return ClaimResult(claim, NOT_RUN, f"at {describe(overlay)}: {why}", published)
        sides.append(comparisons)
    split = set(claim["larger"]) | set(claim["smaller"])
    candidates = [
        (first, second)
        for first in sides[0]
        for second in sides[1]
        if condition(first.settings, split) == condition(second.settings, split)
    ]
    if not candidates:
        why = f"no two conditions differ only in {', '.join(sorted(split))}"
        return ClaimResult(claim, NOT_RUN, why, published)
    first, second = max(
        candidates, key=lambda pair: (min(pair[0].epochs or 0, pair[1].epochs or 0), pair[0].n)
    )
    gains = estimate(first.improvements(lower)), estimate(second.improvements(lower))
    effect = welch_difference(first.improvements(lower), second.improvements(lower))
    epochs = min(first.epochs or 0, second.epochs or 0)
    verdict, reason = judge(effect, epochs, [first.n, second.n], claim, "difference of gains")
    larger, smaller = describe(claim["larger"]), describe(claim["smaller"])
    measured = (
        f"gain at {larger}: {number(gains[0].mean, claim, True)} (n = {first.n}); "
        f"at {smaller}: {number(gains[1].mean, claim, True)} (n = {second.n}); "
        f"difference {number(effect.mean, claim, True)}, {interval(effect, claim)} (Welch), "
        f"{epochs} epochs"
    )
    return ClaimResult(claim, verdict, reason, published, measured, min(first.n, second.n), effect)


def choose_values(
    members: list[Run], claim: dict[str, Any], key: str, reader: Reader
) -> tuple[float, float, int] | None:
    """The large value (given, else the largest run) and the small one (given, else the best
    smaller value by mean), and how many smaller values there were to choose from."""
    values = sorted({float(run.settings[key]) for run in members})
    large = float(claim.get("large", values[-1]))
    smaller = [value for value in values if value < large and not math.isclose(value, large)]
    if claim.get("small") is not None:
        return large, float(claim["small"]), len(smaller)
    means = {}
    for value in smaller:
        chosen = [reader(run) for run in members if math.isclose(run.settings[key], value)]
        if estimate(chosen).mean is not None:
            means[value] = estimate(chosen).mean
    if not means:
        return None
    best = (min if lower_is_better(claim) else max)(means, key=lambda value: means[value])
    return large, best, len(smaller)


def evaluate_alpha_too_large(claim: dict[str, Any], runs: list[Run]) -> ClaimResult:
    """alpha_too_large: the largest value of `key` does worse than the best smaller value."""
    published = str(claim.get("published", "not stated"))
    key, reader = claim.get("key", "alpha"), reader_for(claim)
    families: dict[tuple, list[Run]] = {}
    for run in runs:
        if run.finished and matches(run, claim["selector"]) and is_number(run.settings.get(key)):
            families.setdefault(run.identity([key]), []).append(run)
    found: list[tuple[Comparison, float, float, int]] = []
    for members in families.values():
        values = choose_values(members, claim, key, reader)
        if values is not None:
            large, small, choices = values
            comparisons, _ = compare(members, {key: large}, {key: small}, reader)
            found += [(comparison, large, small, choices) for comparison in comparisons]
    if not found:
        selector = describe(claim["selector"])
        why = f"no paired finished runs with two or more values of {key} match {selector}"
        return ClaimResult(claim, NOT_RUN, why, published)
    chosen, large, small, choices = max(found, key=lambda item: (item[0].epochs or 0, item[0].n))
    difference = chosen.difference()
    effect = difference.negated() if lower_is_better(claim) else difference
    what = f"advantage of {key}={small:g} over {key}={large:g}"
    verdict, reason = judge(effect, chosen.epochs, [chosen.n], claim, what)
    small_mean, large_mean = (
        number(chosen.treatment().mean, claim),
        number(chosen.baseline().mean, claim),
    )
    measured = f"{key}={small:g}: {small_mean} vs {key}={large:g}: {large_mean}; "
    measured += change_text(chosen, claim)
    notes = []
    if choices > 1 and claim.get("small") is None:
        notes.append(
            f"{key}={small:g} is the best of {choices} smaller values on these same runs,"
            " which favours the claim"
        )
    return ClaimResult(claim, verdict, reason, published, measured, chosen.n, effect, notes)


EVALUATORS: dict[str, Callable[[dict[str, Any], list[Run]], ClaimResult]] = {
    "gain": evaluate_gain,
    "error_rate": evaluate_gain,
    "gain_larger": evaluate_gain_larger,
    "alpha_too_large": evaluate_alpha_too_large,
}


def evaluate_claims(claims: Iterable[dict[str, Any]], runs: list[Run]) -> list[ClaimResult]:
    """A verdict for every claim; claims are validated first."""
    results = []
    for claim in claims:
        validate_claim(claim)
        result = EVALUATORS[claim["kind"]](claim, runs)
        if claim.get("notes"):
            result.notes.append(str(claim["notes"]).strip())
        results.append(result)
    return results
