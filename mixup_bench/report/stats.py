"""Small-sample statistics for seed repetitions: intervals, tests and power, from scipy.

A benchmark group usually holds 2 to 5 seeds, where a normal-approximation
interval is far too narrow; the report therefore uses Student's t (quantiles
from scipy.special's stdtrit and stdtr, the functions scipy.stats.t evaluates,
not a typed-in table). scipy is imported inside the
functions, so importing the report stays quick; the report needs scipy (and
so numpy), never torch.

Values whose sample standard deviation is 0 (identical accuracies on a
10,000-image test set happen) give no interval: a t interval of width 0
would claim a certainty the data do not have.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

CONFIDENCE = 0.95
POWER = 0.8
MAX_SEEDS = 1000  # seeds_needed looks no further


def t_quantile(probability: float, degrees_of_freedom: float) -> float:
    """The `probability` quantile of Student's t with these degrees of freedom."""
    # scipy.special's t quantile is what scipy.stats.t.ppf evaluates; importing
    # scipy.stats alone takes seconds, a large share of a report's run time.
    from scipy import special

    if degrees_of_freedom <= 0:
        raise ValueError(f"degrees of freedom must be positive, got {degrees_of_freedom}")
    return float(special.stdtrit(degrees_of_freedom, probability))


def t_critical(degrees_of_freedom: float, confidence: float = CONFIDENCE) -> float:
    """Two-sided critical value: the interval is mean ± t_critical × standard error."""
    return t_quantile(1 - (1 - confidence) / 2, degrees_of_freedom)


def is_number(value: Any) -> bool:
    """True for finite ints and floats (bools and NaN are not measurements)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Estimate:
    """A mean with its spread and 95% confidence interval.

    `std` is the sample standard deviation (n - 1) of the values; for a
    difference of two independent means it is None and only
    `standard_error` is set. `low`/`high` are None when n < 2 or the spread is 0.
    """

    n: int
    mean: float | None
    std: float | None
    standard_error: float | None
    low: float | None
    high: float | None
    degrees_of_freedom: float | None = None

    @property
    def half_width(self) -> float | None:
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2

    def negated(self) -> Estimate:
        """The same estimate for the opposite sign (e.g. error instead of accuracy change)."""
        return Estimate(
            n=self.n,
            mean=None if self.mean is None else -self.mean,
            std=self.std,
            standard_error=self.standard_error,
            low=None if self.high is None else -self.high,
            high=None if self.low is None else -self.low,
            degrees_of_freedom=self.degrees_of_freedom,
        )

    def to_dict(self) -> dict[str, Any]:
        result = asdict(self)
        result["half_width"] = self.half_width
        return result


def estimate(values: Iterable[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean, sample standard deviation and t interval of the finite values given.

    No interval for fewer than 2 values, nor when they are all equal (std 0).
    """
    numbers = [float(value) for value in values if is_number(value)]
    count = len(numbers)
    if count == 0:
        return Estimate(0, None, None, None, None, None)
    mean = statistics.fmean(numbers)
    if count == 1:
        return Estimate(1, mean, None, None, None, None)
    std = statistics.stdev(numbers)
    standard_error = std / math.sqrt(count)
    if standard_error == 0:
        return Estimate(count, mean, 0.0, 0.0, None, None, count - 1)
    half_width = t_critical(count - 1, confidence) * standard_error
    return Estimate(
        count, mean, std, standard_error, mean - half_width, mean + half_width, count - 1
    )


def welch_difference(first: Iterable[float], second: Iterable[float],
                     confidence: float = CONFIDENCE) -> Estimate:
    """Mean(first) - mean(second) for independent samples, Welch's t interval.

    `n` is the smaller sample size, since that limits what the difference
    can show; both samples need two values and some spread for an interval.
    """
    one, two = estimate(first), estimate(second)
    count = min(one.n, two.n)
    if one.mean is None or two.mean is None:
        return Estimate(count, None, None, None, None, None)
    mean = one.mean - two.mean
    if one.std is None or two.std is None:
        return Estimate(count, mean, None, None, None, None)
    variance_one = one.std**2 / one.n
    variance_two = two.std**2 / two.n
    standard_error = math.sqrt(variance_one + variance_two)
    if standard_error == 0:
        return Estimate(count, mean, None, 0.0, None, None, float(one.n + two.n - 2))
    # Welch-Satterthwaite degrees of freedom (as scipy.stats.ttest_ind(equal_var=False)).
    degrees_of_freedom = (variance_one + variance_two) ** 2 / (
        variance_one**2 / (one.n - 1) + variance_two**2 / (two.n - 1)
    )
    half_width = t_critical(degrees_of_freedom, confidence) * standard_error
    return Estimate(
        count, mean, None, standard_error, mean - half_width, mean + half_width, degrees_of_freedom
    )


def p_value(value: Estimate) -> float | None:
    """Two-sided p of the t test that the true mean is 0 (scipy.stats.t's survival function);
    None where the estimate has no interval."""
    if value.low is None or not value.standard_error or value.degrees_of_freedom is None:
        return None
    from scipy import special

    statistic = abs(value.mean) / value.standard_error
    return float(2 * special.stdtr(value.degrees_of_freedom, -statistic))  # = stats.t.sf


def t_test_power(change: float, std: float, count: int,
                 confidence: float = CONFIDENCE) -> float:
    """The power of the two-sided one-sample t test on `count` paired values with this
    spread when the true mean change is `change`: P(|T| > t_crit) with T noncentral t,
    n - 1 degrees of freedom and noncentrality change * sqrt(n) / std (scipy.special's
    nctdtr, the function scipy.stats.nct.cdf evaluates)."""
    from scipy import special

    df = count - 1
    critical = t_critical(df, confidence)
    noncentrality = change * math.sqrt(count) / std
    upper = 1 - float(special.nctdtr(df, noncentrality, critical))
    # The opposite tail is below 1e-16 for a large noncentrality, where nctdtr gives NaN.
    lower = float(special.nctdtr(df, noncentrality, -critical))
    return upper + (lower if math.isfinite(lower) else 0.0)


def detectable_change(std: float | None, count: int, power: float = POWER,
                      confidence: float = CONFIDENCE) -> float | None:
    """The smallest true mean change that `count` paired values with this spread detect
    with the given power by a two-sided t test, solved on the noncentral t (t_test_power).

    The textbook shortcut (t_{1-a/2} + t_{power}) x std / sqrt(n) with central t quantiles
    is optimistic at few seeds: its change has only 0.77 power at n = 3, not 0.80."""
    if std is None or std <= 0 or count < 2:
        return None
    from scipy.optimize import brentq

    # Power rises with the change from the test's level at 0; twice the central-t
    # shortcut has power near 1 for every count >= 2 at the usual levels.
    shortcut = (t_critical(count - 1, confidence) + t_quantile(power, count - 1)) / math.sqrt(count)
    low, high = 0.0, 2 * shortcut * std
    return float(brentq(lambda change: t_test_power(change, std, count, confidence) - power,
                        low, high, xtol=1e-12 * std, rtol=1e-10))


def seeds_needed(std: float | None, change: float | None, power: float = POWER,
                 confidence: float = CONFIDENCE) -> int | None:
    """How many paired seeds would detect `change` (its size) with the given power, at the
    measured spread; None without a spread or a change, or beyond MAX_SEEDS."""
    if std is None or std <= 0 or not change:
        return None
    for count in range(2, MAX_SEEDS + 1):
        if t_test_power(abs(change), std, count, confidence) >= power:
            return count
    return None


def valid_reliability(table: Any) -> bool:
    """A summary.json `reliability` object: increasing `edges` (one more than bins) and per bin
    a `count` >= 0 and a `confidence` and `accuracy` that are numbers or null."""
    if not isinstance(table, dict):
        return False
    edges, count = table.get("edges"), table.get("count")
    if not isinstance(edges, list) or not isinstance(count, list) or not count:
        return False
    if len(edges) != len(count) + 1 or not all(is_number(edge) for edge in edges):
        return False
    if any(upper <= lower for lower, upper in zip(edges[:-1], edges[1:], strict=True)):
        return False
    if not all(is_number(number) and number >= 0 for number in count):
        return False
    for key in ("confidence", "accuracy"):
        values = table.get(key)
        if not isinstance(values, list) or len(values) != len(count):
            return False
        if not all(value is None or is_number(value) for value in values):
            return False
    return True


def pool_reliability(tables: Iterable[Any]) -> dict[str, Any] | None:
    """Pool the reliability tables of several runs (the seeds of a group) bin by bin.

    Per bin: count = the sum of the counts; accuracy (and confidence) = sum(value * count) /
    sum(count) over the runs whose bin is not empty, null when no run has a prediction there.
    Malformed tables, and tables binned differently from the first valid one, are left out;
    `runs` says how many were pooled. None when no table is valid.
    """
    valid = [table for table in tables if valid_reliability(table)]
    if not valid:
        return None
    edges = [float(edge) for edge in valid[0]["edges"]]
    same = [
        table
        for table in valid
        if len(table["edges"]) == len(edges)
        and all(
            math.isclose(float(edge), first, abs_tol=1e-6)
            for edge, first in zip(table["edges"], edges, strict=True)
        )
    ]
    bins = len(edges) - 1
    pooled: dict[str, Any] = {"bins": bins, "edges": edges, "runs": len(same), "count": []}
    pooled["count"] = [sum(table["count"][index] for table in same) for index in range(bins)]
    for key in ("confidence", "accuracy"):
        values: list[float | None] = []
        for index in range(bins):
            weighted = [
                (float(table[key][index]), float(table["count"][index]))
                for table in same
                if table[key][index] is not None and table["count"][index] > 0
            ]
            weight = sum(count for _, count in weighted)
            total = sum(value * count for value, count in weighted)
            values.append(total / weight if weight else None)
        pooled[key] = values
    return pooled
