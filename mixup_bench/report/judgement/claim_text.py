"""How a claim's numbers are read and written: the published change signed the way a
verdict judges it, values in the claim's display unit, and the published claim as text.

Shared by the verdicts (verdicts.py) and the report's rendering (markdown, forest plot),
so that a plotted diamond and a judged change cannot disagree.
"""

from __future__ import annotations

from typing import Any

from ..stats import Estimate, is_number
from .claim_schema import published_change, scale

LEVEL_NOTE_POINTS = 1.0  # a measured baseline this far from the published one gets a note


def lower_is_better(claim: dict[str, Any]) -> bool:
    return bool(claim.get("lower_is_better", claim["kind"] == "error_rate"))


def judged_change(claim: dict[str, Any]) -> float | None:
    """The published change as a gain or error-rate verdict judges it: signed so that
    positive is the claimed direction (a fall in error or ECE counts as positive)."""
    change = published_change(claim)
    if change is not None and claim["kind"] in ("gain", "error_rate") and lower_is_better(claim):
        return -change
    return change


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
    unit = scale(claim)
    return f"95% CI [{unit * effect.low:+.2f}, {unit * effect.high:+.2f}]"


def levels_note(claim: dict[str, Any], levels: dict[str, float | None]) -> list[str]:
    published, measured = levels.get("published_baseline"), levels.get("measured_baseline")
    if published is None or measured is None:
        return []
    gap = (measured - published) * scale(claim)
    if abs(gap) < LEVEL_NOTE_POINTS or not claim.get("percent", True):
        return []
    return [f"the measured baseline ({number(measured, claim)}) is {abs(gap):.1f} points "
            f"{'above' if gap > 0 else 'below'} the published one ({number(published, claim)}):"
            " a protocol difference (data copy, schedule, augmentation); levels never decide "
            "the verdict on a change"]


def published_text(claim: dict[str, Any]) -> str:
    before, after = claim.get("published_baseline"), claim.get("published_treatment")
    change = published_change(claim)
    if not (is_number(before) and is_number(after)):
        if change is not None:
            return f"change {number(change, claim, True)}"
        return str(claim.get("published", "not stated"))
    unit = "%" if claim.get("percent", True) else ""
    label = "error " if claim["kind"] == "error_rate" else ""
    return f"{label}{before:g}{unit} → {after:g}{unit} ({number(change, claim, True)})"
