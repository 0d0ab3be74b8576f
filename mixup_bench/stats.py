"""Small-sample statistics for seed repetitions, without SciPy.

A benchmark group usually holds 2 to 5 seeds, where a normal-approximation
interval is far too narrow; the report therefore uses Student's t. The
critical values are hard-coded (two-sided 95%, degrees of freedom 1 to 30;
above 30 the normal value 1.96 is used, which is at most 4% too narrow at
df = 31), so `mixup-bench report` needs nothing beyond the standard library.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

# Two-sided 95% critical values of Student's t, t(0.975, df), from any
# statistics table (e.g. NIST/SEMATECH e-Handbook, table 1.3.6.7.2).
T_CRITICAL_95 = {
    1: 12.706,
    2: 4.303,
    3: 3.182,
    4: 2.776,
    5: 2.571,
    6: 2.447,
    7: 2.365,
    8: 2.306,
    9: 2.262,
    10: 2.228,
    11: 2.201,
    12: 2.179,
    13: 2.160,
    14: 2.145,
    15: 2.131,
    16: 2.120,
    17: 2.110,
    18: 2.101,
    19: 2.093,
    20: 2.086,
    21: 2.080,
    22: 2.074,
    23: 2.069,
    24: 2.064,
    25: 2.060,
    26: 2.056,
    27: 2.052,
    28: 2.048,
    29: 2.045,
    30: 2.042,
}
NORMAL_CRITICAL_95 = 1.96


def t_critical(degrees_of_freedom: float) -> float:
    """Two-sided 95% t value; fractional df (Welch) are rounded down, which is conservative."""
    whole = math.floor(degrees_of_freedom)
    if whole < 1:
        raise ValueError(f"degrees of freedom must be at least 1, got {degrees_of_freedom}")
    return T_CRITICAL_95.get(whole, NORMAL_CRITICAL_95)


def is_number(value: Any) -> bool:
    """True for finite ints and floats (bools and NaN are not measurements)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Estimate:
    """A mean with its spread and 95% confidence interval.

    `std` is the sample standard deviation (n - 1) of the values; for a
    difference of two independent means it is None and only
    `standard_error` is set. `low`/`high` are None when n < 2.
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


def estimate(values: Iterable[float]) -> Estimate:
    """Mean, sample standard deviation and t-based 95% CI of the finite values given."""
    numbers = [float(value) for value in values if is_number(value)]
    count = len(numbers)
    if count == 0:
        return Estimate(0, None, None, None, None, None)
    mean = statistics.fmean(numbers)
    if count == 1:
        return Estimate(1, mean, None, None, None, None)
    std = statistics.stdev(numbers)
    standard_error = std / math.sqrt(count)
    half_width = t_critical(count - 1) * standard_error
    return Estimate(
        count, mean, std, standard_error, mean - half_width, mean + half_width, count - 1
    )


def welch_difference(first: Iterable[float], second: Iterable[float]) -> Estimate:
    """Mean(first) - mean(second) for independent samples, Welch's CI.

    `n` is the smaller sample size, since that limits what the difference
    can show; both samples need two values for an interval.
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
        return Estimate(count, mean, None, 0.0, mean, mean, float(one.n + two.n - 2))
    # Welch-Satterthwaite degrees of freedom.
    degrees_of_freedom = (variance_one + variance_two) ** 2 / (
        variance_one**2 / (one.n - 1) + variance_two**2 / (two.n - 1)
    )
    half_width = t_critical(degrees_of_freedom) * standard_error
    return Estimate(
        count, mean, None, standard_error, mean - half_width, mean + half_width, degrees_of_freedom
    )


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
