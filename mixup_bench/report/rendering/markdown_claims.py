"""REPORT.md's claims: the headline table at the top, and each claim in detail further down.

The headline answers "did the claim hold?" in one row per claim: the
verdict (and Holm's), the published and the measured change side by side
in the same direction and units, the 95% CI, the seeds and epochs behind it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..judgement.claim_schema import scale
from ..judgement.claim_text import lower_is_better, number
from ..judgement.judging import FAMILY_ERROR
from ..judgement.verdicts import ClaimResult, metric_name
from ..stats import Estimate

if TYPE_CHECKING:
    from .model import Report


def cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(cell(item) for item in header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell(item) for item in row) + " |" for row in rows]


def shown_path(path: Path, roots: list[Path]) -> str:
    for root in roots:
        try:
            return str(path.relative_to(Path(root).resolve())) or "."
        except ValueError:
            continue
    return str(path)


def as_published(result: ClaimResult) -> Estimate | None:
    """The measured change in the published numbers' direction (an error's change for an
    error rate), not the claim's sign; None where nothing was measured."""
    if result.evidence is None:
        return None
    effect = result.evidence.effect
    flip = lower_is_better(result.claim) and result.claim["kind"] != "gain_larger"
    return effect.negated() if flip else effect


def measured_text(result: ClaimResult) -> str:
    """Levels and change, as the published column puts them; the change alone where the
    claim has no levels."""
    change = as_published(result)
    if change is None or change.mean is None:
        return "—"
    claim, levels = result.claim, result.levels
    signed = number(change.mean, claim, True)
    if claim["kind"] == "gain_larger":
        return f"difference of gains {signed}"
    if claim["kind"] == "alpha_too_large":
        return f"{claim.get('key', 'alpha')}={claim['small']:g} ahead by {signed}"
    before, after = levels.get("measured_baseline"), levels.get("measured_treatment")
    if before is None or after is None:
        return signed
    label = "error " if claim["kind"] == "error_rate" else ""
    return f"{label}{number(before, claim)} → {number(after, claim)} ({signed})"


def interval_text(result: ClaimResult) -> str:
    change = as_published(result)
    if change is None or change.low is None or change.high is None:
        return "—"
    unit = scale(result.claim)
    return f"[{unit * change.low:+.2f}, {unit * change.high:+.2f}]"


def headline_section(report: Report) -> list[str]:
    """One row per claim, in the claims files' order: does it hold?"""
    lines = ["## Claims at a glance", "",
             "Measured: the mean paired change over seeds (treatment minus baseline run with "
             "the same settings and seed), in the direction and units the published column "
             "uses; 95% CI of that change. Verdicts follow the rules below; Holm-adjusted: "
             "the same rules on wider intervals, so that the chance of any false \"excludes "
             f"0\" over all the claims tested stays under {100 * FAMILY_ERROR:g}%. Details per "
             "claim under "
             "[Claims](#claims).", ""]
    rows = []
    for result in report.claims:
        evidence = result.evidence
        rows.append([
            result.claim["id"], f"**{result.verdict}**",
            result.adjusted_verdict or result.verdict, result.published, measured_text(result),
            interval_text(result), "—" if evidence is None else evidence.seeds,
            "—" if evidence is None or evidence.epochs is None else evidence.epochs,
        ])
    lines += table(["claim", "verdict", "Holm-adjusted", "published", "measured", "95% CI",
                    "seeds", "epochs"], rows) if rows else ["No claims."]
    return lines + [""]


def _points(value: float | None, claim: dict[str, Any]) -> str:
    if value is None:
        return "—"
    return f"{value * (100 if claim.get('percent', True) else 1):.2f}"


def claims_section(report: Report) -> list[str]:
    """Each claim: statement, source, published and measured, the reasons, the runs used;
    first the power each claim's seeds have."""
    if not report.claims:
        return ["## Claims", "", "No claims.", ""]
    lines = ["## Claims", "",
             "Detectable: the smallest change these seeds would detect with 80% power "
             "(points); seeds to decide: how many paired seeds would detect the published "
             "change.", ""]
    rows = []
    for result in report.claims:
        data = result.to_dict()
        rows.append([result.claim["id"], result.verdict,
                     _points(data["detectable_change"], result.claim),
                     "—" if data["seeds_to_decide"] is None else data["seeds_to_decide"]])
    lines += table(["claim id", "verdict", "detectable", "seeds to decide"], rows)
    for result in report.claims:
        data = result.to_dict()
        lines += [
            "",
            f"### {result.claim['id']}",
            "",
            f"- Statement: {result.claim['statement']}",
            f"- Source: {result.claim['source']}",
            f"- Published: {result.published}",
            f"- Measured ({metric_name(result.claim)}): {result.measured}",
            f"- Verdict: **{result.verdict}**: {result.reason}",
            f"- Holm-adjusted: {data['adjusted_verdict']}: {data['adjusted_reason']}"
            + ("" if data["p_value"] is None else f" (p = {data['p_value']:.3g})"),
            f"- Tolerance: {_points(data['tolerance'], result.claim)} points",
        ]
        levels = data["levels"]
        if levels:
            lines.append("- Levels, published → measured: baseline "
                         f"{_points(levels.get('published_baseline'), result.claim)} → "
                         f"{_points(levels.get('measured_baseline'), result.claim)}, treatment "
                         f"{_points(levels.get('published_treatment'), result.claim)} → "
                         f"{_points(levels.get('measured_treatment'), result.claim)}")
        lines += [f"- Note: {note}" for note in result.notes]
        if data["runs"]:
            lines.append("- Runs used (seed: baseline | treatment): " + "; ".join(
                f"{run['seed']}: {shown_path(Path(run['baseline']), report.directories)} | "
                f"{shown_path(Path(run['treatment']), report.directories)}"
                + (f" (left out: {', '.join(run['left_out'])})" if run["left_out"] else "")
                for run in data["runs"]))
        left_out: dict[str, list[str]] = {}  # why -> runs: one line per reason
        for item in data["left_out"]:
            left_out.setdefault(item["why"], []).append(
                shown_path(Path(item["run"]), report.directories))
        lines += [f"- Left out ({len(paths)} run{'s' if len(paths) > 1 else ''}), {why}: "
                  f"{', '.join(paths)}" for why, paths in left_out.items()]
    return lines + [""]


__all__ = ["cell", "claims_section", "headline_section", "shown_path", "table"]
