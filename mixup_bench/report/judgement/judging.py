"""The verdict rules: a measured change against a published one, judged by its size.

Every effect here is signed so that positive is the direction the claim
states (a gain, a lower error, a larger gain under the first condition).
The vocabulary is the one a reviewer uses:

- supported: the interval excludes 0 and holds the published change
  (within the tolerance); a claim without a number: the interval excludes 0;
- smaller than claimed / larger than claimed: the interval excludes 0 and
  the published change (beyond the tolerance): a real effect, of another size;
  with "; no change not excluded" when the interval also holds 0 (or Holm's
  step-down stopped before the claim), so nobody reads an effect into it;
- contradicted: the interval excludes the published change and any gain
  larger than the tolerance in the claimed direction (a tight null result);
- inconclusive: too few seeds, too short, no interval (identical
  differences), or an interval that holds both 0 and the published change;
- not run: no finished runs match the claim, or none pair up.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..runs.legacy import LEGACY_TEXT
from ..stats import CONFIDENCE, POWER, Estimate, detectable_change, seeds_needed
from .claim_schema import ACCURACY_TOLERANCE, ECE_TOLERANCE

SUPPORTED = "supported"
SMALLER = "smaller than claimed"
LARGER = "larger than claimed"
# A size verdict whose interval also holds 0: readers take "smaller than claimed" for "an
# effect, only smaller", so the verdict itself says that no change is not ruled out.
ZERO_NOT_EXCLUDED = "no change not excluded"
SMALLER_ZERO = f"{SMALLER}; {ZERO_NOT_EXCLUDED}"
LARGER_ZERO = f"{LARGER}; {ZERO_NOT_EXCLUDED}"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
VERDICTS = (SUPPORTED, SMALLER, SMALLER_ZERO, LARGER, LARGER_ZERO, CONTRADICTED, INCONCLUSIVE,
            NOT_RUN)
FAMILY_ERROR = 1 - CONFIDENCE  # Holm controls the chance of any false "excludes 0" at this


@dataclass(frozen=True)
class Evidence:
    """What a verdict rests on, in the metric's units, signed as the claim states it."""

    effect: Estimate
    change: float | None  # the published change; None: the claim gives only a direction
    tolerance: float
    seeds: int  # paired seeds (the smaller side for a difference of gains)
    epochs: int | None
    min_seeds: int
    min_epochs: int


def judge(evidence: Evidence, allow_zero_excluded: bool = True) -> tuple[str, str]:
    """(verdict, reason). `allow_zero_excluded=False` is Holm's step-down having stopped: the
    interval may not count as excluding 0, whatever it shows."""
    effect, change, tol = evidence.effect, evidence.change, evidence.tolerance
    shortfalls = []  # every one named: a reader plans the next runs from this line
    if evidence.seeds < evidence.min_seeds:
        shortfalls.append(f"only {evidence.seeds} paired seed(s); at least "
                          f"{evidence.min_seeds} needed")
    if evidence.min_epochs and (evidence.epochs is None or evidence.epochs < evidence.min_epochs):
        shortfalls.append(f"runs shorter than {evidence.min_epochs} epochs "
                          f"({evidence.epochs} completed)")
    if shortfalls:
        return INCONCLUSIVE, "; ".join(shortfalls)
    if effect.low is None or effect.high is None:
        if effect.std == 0 or effect.standard_error == 0:
            return INCONCLUSIVE, ("every paired difference is the same (standard deviation 0): "
                                  "no interval, so no verdict")
        return INCONCLUSIVE, "no confidence interval"
    low, high = effect.low, effect.high
    above_zero = low > 0 and allow_zero_excluded
    if change is None:
        if above_zero:
            return SUPPORTED, "the interval lies above 0 (the claim gives a direction, no size)"
        if high <= tol:
            return CONTRADICTED, "the interval excludes any gain larger than the tolerance"
        return INCONCLUSIVE, "the interval holds 0 and gains larger than the tolerance"
    holds = low - tol <= change <= high + tol
    if holds and above_zero:
        return SUPPORTED, "the interval excludes 0 and holds the published change"
    if holds:
        return INCONCLUSIVE, "the interval holds both 0 and the published change"
    if high + tol < change:
        if high <= tol:
            return CONTRADICTED, ("the interval excludes the published change and any gain "
                                  "larger than the tolerance")
        if above_zero:
            return SMALLER, "the interval excludes 0 and lies below the published change"
        return SMALLER_ZERO, f"the interval lies below the published change and {_zero(low)}"
    if above_zero:
        return LARGER, "the interval excludes 0 and lies above the published change"
    return LARGER_ZERO, f"the interval lies above the published change and {_zero(low)}"


def _zero(low: float) -> str:
    """Why 0 is not excluded: the interval holds it, or Holm's step-down stopped before."""
    if low <= 0:
        return "holds 0"
    return "may not count as excluding 0 (Holm's step-down stopped before this claim)"


def per_seed_spread(effect: Estimate) -> float | None:
    """The spread of one paired seed's difference: the std, or for a difference of two
    means (Welch: no std) the standard error scaled back by sqrt(n)."""
    if effect.std is not None:
        return effect.std
    if effect.standard_error is None or effect.n < 2:
        return None
    return effect.standard_error * effect.n ** 0.5


def power_figures(evidence: Evidence) -> tuple[float | None, int | None]:
    """The smallest change these seeds detect with 80% power, and the seeds that would
    detect the published change (None without a spread or a published number)."""
    spread = per_seed_spread(evidence.effect)
    detectable = detectable_change(spread, evidence.effect.n, POWER)
    needed = None if evidence.change is None else seeds_needed(spread, evidence.change, POWER)
    return detectable, needed


RULES = f"""\
- The measured effect is the mean over seeds of paired differences (the treatment run
  minus the baseline run with the same settings and seed), signed so that positive is
  the direction the claim states. Intervals are {100 * CONFIDENCE:.0f}% Student t
  intervals (scipy). `gain_larger` compares two such gains: where both conditions ran the same
  seeds, by the per-seed difference of the two paired differences (an exact paired t
  interval); where the seeds differ, by Welch's interval on the two mean gains. The
  report says which.
- A claim is judged on exactly the runs it describes: every condition key it does not
  pin (data fraction, label noise, dropout, zero_init_last, label smoothing and the
  other aug.* switches) must hold its config default. If runs of more than one condition
  still match, the claim is not decided; the report names the keys to pin. One seed is
  one pair: a seed run twice counts once (the longer, then later run), and the report
  lists the runs used and those left out, with why: a run the claim's selectors take but
  for its data regime (data fraction, label noise, validation split), a paper's procedure
  (normalisation, label-noise mode, zero_init_last) or a key it cannot tell. A run with
  another aug.* switch is another method, not a left-out run of this one.
- A key a run lacks (written before the key existed) takes the value the older version
  used where it is known ({LEGACY_TEXT});
  otherwise it is unknown, and a claim that pins the key or needs its default leaves
  the run out and says so.
- `alpha_too_large` compares the published alpha with the largest alpha (or the claim's
  `large`) among the runs its own selector describes (its method and pinned keys), never
  an alpha only another method ran.
- **supported**: the interval excludes 0 and holds the published change, within the
  claim's tolerance. A claim without a number: the interval lies above 0. The default
  tolerance is the test set's sampling floor for the metric: accuracy and error rate
  {100 * ACCURACY_TOLERANCE:.2f} points (the binomial standard error of a 95% accuracy on
  10,000 test images), ECE {100 * ECE_TOLERANCE:.2f} points (at most the first-order
  standard error of 15 bins' accuracies, sqrt(15 x 0.95 x 0.05 / 10,000)); a claim on
  any other metric must state its tolerance.
- **smaller than claimed** / **larger than claimed**: the interval excludes 0 and lies
  below / above the published change by more than the tolerance.
- **smaller than claimed; no change not excluded** / **larger than claimed; no change
  not excluded**: the interval lies below / above the published change by more than the
  tolerance but also holds 0 (or may not count as excluding it after Holm): a true
  change of 0 fits the data as well.
- **contradicted**: the interval excludes the published change and any gain larger than
  the tolerance in the claimed direction (a tight null result, or a loss).
- **inconclusive**: fewer paired seeds than the claim's `min_seeds` (default 3), runs
  shorter than its `min_epochs` (default 200), every paired difference equal (no
  interval), or an interval that holds both 0 and the published change.
- **not run**: no finished runs match the claim, or none pair up.
- Published and measured levels (e.g. the baseline's accuracy) are shown side by side;
  a level never decides a gain's verdict.
- Many claims: with m claims tested, the Holm-adjusted verdict applies the same rules to
  a wider interval, at 1 - {FAMILY_ERROR:g}/k for the claim ranked r by its p-value
  (k = m - r + 1); once one claim in that order fails to exclude 0 (on either side: a
  significant loss rejects "no change" as much as a gain), none after it may.
  This keeps the chance of any false "excludes 0" among the claims under {FAMILY_ERROR:g}.
- Power: "detectable" is the smallest true change the paired seeds would detect with
  {100 * POWER:.0f}% power at the measured spread, by the two-sided t test's power on the
  noncentral t distribution (scipy); "seeds to decide" is how many paired seeds would
  detect the published change with that power.
"""


def rules_page() -> str:
    """docs/verdicts.md: RULES exactly as REPORT.md prints them, under a short header
    (written by scripts/write_verdict_rules.py; a test keeps the page and the code equal)."""
    return ("# Verdict rules\n\n"
            "How `mixup-bench report` judges each published claim. This page is\n"
            "generated from `mixup_bench/report/judgement/judging.py` (`RULES`, printed\n"
            "verbatim at the end of every REPORT.md) by\n"
            "`python scripts/write_verdict_rules.py`; the claims themselves are in\n"
            "`mixup_bench/report/judgement/claims/*.yaml`, their schema in\n"
            "`mixup_bench/report/judgement/claim_schema.py`.\n\n" + RULES)
