"""Published claims as data: the claims files, their schema, and the defaults a claim implies.

Claims live in mixup_bench/report/judgement/claims/*.yaml (and files given with
`--claims`), so checking one more claim is a few lines of YAML that name
config keys, not new code. Each file holds `claims:`, a list of mappings:

    id, source, statement   text; the statement is what the source says
    kind                    gain | error_rate | gain_larger | alpha_too_large
    metric                  summary.json key (default final_test_acc; error_rate:
                            last10_test_acc); best_test_acc is refused: it is chosen
                            on the test set
    lower_is_better         default false (error_rate: true, on the error 1 - acc)
    percent                 values in percent (default true)
    min_epochs, min_seeds   below these no verdict is given (defaults 200 and 3)
    tolerance               how far outside the interval the published change may lie
                            and still count as held, in points (percent) or units
                            (default: the test set's floor for the metric: 0.22 points
                            for accuracies, 0.84 for ECE; DEFAULT_TOLERANCES; a claim
                            on any other metric must state one)
    published               text shown as the published value
    published_baseline,     levels as printed (percent when `percent`): their
    published_treatment     difference is the published change (gain, error_rate)
    published_change        the change itself, where only that is published
    notes                   text shown under the claim
    gain, error_rate:  baseline, treatment        selectors
    gain_larger:       baseline, treatment, larger, smaller (added to both
                       selectors; the claim: the gain under `larger` exceeds the
                       gain under `smaller`)
    alpha_too_large:   selector, small (the published good value, e.g. 0.2),
                       key (default alpha), large (default: the largest value run)

A selector maps dotted config keys to values: numbers compare with a
tolerance, text case-insensitively, a list means "any of", null matches a
missing or null key. Every condition key a claim does not pin takes its
config default (condition_defaults), so runs with label noise, label
smoothing, another data fraction or dropout never decide a claim about
clean, plain training.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

CLAIM_PACKAGE = "mixup_bench.report.judgement.claims"
CONFIG_PACKAGE = "mixup_bench.conf"
REQUIRED_KEYS = {
    "gain": ("baseline", "treatment"),
    "error_rate": ("baseline", "treatment"),
    "gain_larger": ("baseline", "treatment", "larger", "smaller"),
    "alpha_too_large": ("selector",),
}
DEFAULT_MIN_EPOCHS = 200  # a full schedule of the papers' CIFAR recipes
DEFAULT_MIN_SEEDS = 3
# Default tolerances, one per metric, in the metric's own units (fractions). Each is the
# test set's own sampling floor for that metric, so a published change within it of the
# interval is "held": a smaller miss is below what 10,000 test images can resolve.
# - accuracy (and the error rate 1 - accuracy): the binomial standard error of an accuracy
#   near 95% on the 10,000 CIFAR test images, sqrt(0.95 * 0.05 / 10000) = 0.0022.
# - ECE (15 equal-width confidence bins): sum_b (n_b / N) |acc_b - conf_b|; each bin's
#   accuracy carries a binomial error sqrt(p_b (1 - p_b) / n_b), so the first-order standard
#   error of the sum is at most sum_b sqrt(n_b p_b (1 - p_b)) / N <= sqrt(15 * 0.95 * 0.05 /
#   10000) = 0.0084 (Cauchy-Schwarz over the 15 bins, at 95% accuracy overall).
# A metric not listed here (a loss, a custom key) has no default: a claim on it must state
# its own `tolerance`, and validate_claim refuses it otherwise.
TEST_SET_IMAGES = 10_000
ACCURACY_TOLERANCE = math.sqrt(0.95 * 0.05 / TEST_SET_IMAGES)
ECE_BINS = 15
ECE_TOLERANCE = math.sqrt(ECE_BINS * 0.95 * 0.05 / TEST_SET_IMAGES)
DEFAULT_TOLERANCES = {
    "final_test_acc": ACCURACY_TOLERANCE,
    "last10_test_acc": ACCURACY_TOLERANCE,
    "last10_median_test_acc": ACCURACY_TOLERANCE,
    "test_ece": ECE_TOLERANCE,
    "final_test_ece": ECE_TOLERANCE,
}
REFUSED_METRICS = {"best_test_acc": "it is the best epoch chosen on the test set itself, an "
                                    "optimistic estimate; use final_test_acc, last10_test_acc "
                                    "or last10_median_test_acc"}
# The keys that change the experimental condition a claim is about, and the config files
# whose values are their defaults (conf/ is the one place defaults live).
CONDITION_SOURCES = {
    "data/cifar10.yaml": ("data", ("fraction", "label_noise")),
    "model/resnet18.yaml": ("model", ("dropout", "zero_init_last")),
    "aug_options/default.yaml": ("aug", None),  # every shared aug.* switch
}


@cache
def condition_defaults() -> dict[str, Any]:
    """{dotted key: default} for the condition keys, read from the packaged conf/ files."""
    folder = resources.files(CONFIG_PACKAGE)
    defaults: dict[str, Any] = {}
    for name, (section, keys) in CONDITION_SOURCES.items():
        document = yaml.safe_load(folder.joinpath(name).read_text(encoding="utf-8")) or {}
        for key, value in document.items():  # group files hold their keys at the top
            if keys is None or key in keys:
                defaults[f"{section}.{key}"] = value
    return defaults


def metric_name(claim: dict[str, Any]) -> str:
    return claim.get(
        "metric", "last10_test_acc" if claim["kind"] == "error_rate" else "final_test_acc"
    )


def load_claims(extra_files: Iterable[Path] = ()) -> list[dict[str, Any]]:
    """The packaged claims, then those in `extra_files`; a bad claim raises ValueError/TypeError."""
    entries = sorted((item for item in resources.files(CLAIM_PACKAGE).iterdir()
                      if item.name.endswith(".yaml")), key=lambda item: item.name)
    sources = [(entry.name, entry.read_text(encoding="utf-8")) for entry in entries]
    sources += [(str(path), Path(path).read_text(encoding="utf-8")) for path in extra_files]
    claims: list[dict[str, Any]] = []
    for origin, text in sources:
        try:
            document = yaml.safe_load(text) or {}
        except yaml.YAMLError as error:  # safe_load: a !!python/... tag is refused here
            mark = getattr(error, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(error, "problem", None) or (str(error).splitlines() or [""])[0]
            raise ValueError(f"{origin}: not valid YAML{where}: {problem}; a claims file is "
                             "plain data (no !!python tags)") from None
        found = document.get("claims", []) if isinstance(document, dict) else document
        if not isinstance(found, list):
            raise TypeError(f"{origin}: expected a list of claims under `claims:`")
        for claim in found:
            validate_claim(claim, origin)
            if any(claim["id"] == other["id"] for other in claims):
                raise ValueError(f"{origin}: duplicate claim id {claim['id']!r}")
            claims.append(claim)
    return claims


def validate_claim(claim: Any, origin: str = "claim") -> None:
    """Refuse a claim the rules cannot evaluate fairly, saying what is wrong."""
    if not isinstance(claim, dict):
        raise TypeError(f"{origin}: a claim must be a mapping, got {claim!r}")
    missing = [key for key in ("id", "source", "statement", "kind") if key not in claim]
    if missing:
        raise ValueError(f"{origin}: claim {claim.get('id', '?')!r} lacks {', '.join(missing)}")
    name = f"{origin}: claim {claim['id']!r}"
    if claim["kind"] not in REQUIRED_KEYS:
        raise ValueError(f"{name} has unknown kind {claim['kind']!r}; valid: "
                         f"{', '.join(REQUIRED_KEYS)}")
    for key in REQUIRED_KEYS[claim["kind"]]:
        if not isinstance(claim.get(key), dict):
            raise TypeError(f"{name} needs a mapping {key!r}")
    metric = metric_name(claim)
    if metric in REFUSED_METRICS:
        raise ValueError(f"{name}: metric {metric} is refused: {REFUSED_METRICS[metric]}")
    if claim["kind"] == "alpha_too_large" and not _is_number(claim.get("small")):
        raise ValueError(f"{name} needs `small`, the published value to compare with the "
                         "largest one run, fixed before the data are read")
    for key in ("min_epochs", "min_seeds"):
        if key in claim and (not isinstance(claim[key], int) or claim[key] < 0):
            raise ValueError(f"{name}: {key}={claim[key]!r}: expected an integer >= 0")
    if "tolerance" in claim and not (_is_number(claim["tolerance"]) and claim["tolerance"] >= 0):
        raise ValueError(f"{name}: tolerance={claim['tolerance']!r}: expected a number >= 0")
    if "tolerance" not in claim and metric not in DEFAULT_TOLERANCES:
        raise ValueError(f"{name}: metric {metric} has no default tolerance (defaults: "
                         f"{', '.join(DEFAULT_TOLERANCES)}); state `tolerance`, the smallest "
                         "miss that matters, in the metric's units")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def scale(claim: dict[str, Any]) -> float:
    """Claim-file numbers are percent (points for changes) when `percent`, else raw units."""
    return 100.0 if claim.get("percent", True) else 1.0


def tolerance(claim: dict[str, Any]) -> float:
    """The claim's tolerance in the metric's own units (fractions for accuracies): the one it
    states, else its metric's default (DEFAULT_TOLERANCES; validate_claim refuses others)."""
    given = claim.get("tolerance")
    return DEFAULT_TOLERANCES[metric_name(claim)] if given is None else float(given) / scale(claim)


def published_levels(claim: dict[str, Any]) -> tuple[float | None, float | None]:
    """The published baseline and treatment levels in the metric's units, where given."""
    before, after = claim.get("published_baseline"), claim.get("published_treatment")
    if not (_is_number(before) and _is_number(after)):
        return None, None
    return before / scale(claim), after / scale(claim)


def published_change(claim: dict[str, Any]) -> float | None:
    """The published change in the metric's units and own direction (after - before)."""
    if _is_number(claim.get("published_change")):
        return claim["published_change"] / scale(claim)
    before, after = published_levels(claim)
    return None if before is None else after - before
