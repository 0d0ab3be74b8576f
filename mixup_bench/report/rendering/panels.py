"""What each figure shows, computed from a Report: panels, labels, reference levels, alt text.

The figure modules draw plain numbers; this module decides what goes where:
claims in the claims table's order, groups split into small multiples by the
facet keys (labels.facet), labels naming only what varies, the settings every
run shares said once in the figure's title, published levels and the
no-mixing baseline as references. Nothing here imports matplotlib.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

from ..judgement.claim_schema import (
    condition_defaults,
    metric_name,
    published_levels,
    scale,
    tolerance,
)
from ..judgement.claim_text import judged_change
from ..judgement.judging import INCONCLUSIVE
from ..runs.grouping import condition, is_unmixed, matches
from ..runs.rundirs import ALWAYS_SHOWN, AUGMENTATION_KEYS, is_mixing_parameter
from ..stats import is_number
from .figures import AlphaPanel, AlphaSeries, CurvePanel, FigureText, Level, Line
from .figures_calibration import ReliabilityPanel
from .figures_claims import ClaimRow
from .labels import Labelling, facet, labelling, panel_keys
from .model import GroupResult

if TYPE_CHECKING:
    from .model import Report

# The shared settings a figure's title names (all of them are listed in REPORT.md).
TITLE_KEYS = ("data.name", *ALWAYS_SHOWN)


def _settings(result: GroupResult) -> dict[str, Any]:
    return result.group.settings


def figure_text(title: str, labels: Labelling, facets: list[str] | None = None) -> FigureText:
    """The title, then the shared settings and what a label leaves unsaid (the facet keys
    are in every panel's title)."""
    notes = []
    keys = [key for key in TITLE_KEYS if key in labels.constant]
    shared = labels.shared_text([key for key in keys if not is_mixing_parameter(key)])
    mixing = labels.shared_text([key for key in keys if is_mixing_parameter(key)])
    if shared or mixing:
        notes.append("; ".join(filter(None, [shared and f"all runs: {shared}",
                                             mixing and f"all runs that mix: {mixing}"])))
    usual = labels.usual_text(facets or ())
    if usual:
        notes.append(f"unless a label or panel title says otherwise: {usual}")
    return FigureText(title, notes)


def _published(report: Report, members: list[GroupResult], names: dict[int, str]) -> list[Level]:
    """Published accuracy levels of the claims whose runs this panel shows, in percent."""
    levels: dict[tuple, Level] = {}
    for result in report.claims:
        claim = result.claim
        if claim["kind"] not in ("gain", "error_rate") or "test_acc" not in metric_name(claim):
            continue
        for side, level in zip(("baseline", "treatment"), published_levels(claim), strict=True):
            matching = [member for member in members if member.group.runs and matches(
                member.group.runs[0], claim[side], condition_defaults())]
            if level is None or not matching:
                continue
            accuracy = 100 * ((1 - level) if claim["kind"] == "error_rate" else level)
            name = names[id(matching[0])]
            levels.setdefault((round(accuracy, 6), name), Level(
                f"published, {name}: {accuracy:.4g}% ({claim['id']})", accuracy,
                colour_of=name))
    return list(levels.values())


def curve_panels(report: Report, key: str, published: bool = False
                 ) -> tuple[list[CurvePanel], FigureText, list[str]]:
    """One panel per facet value; per group its runs' `key` curves (and published levels)."""
    labels = labelling(report)
    panels, facets = facet(report.groups, _settings, labels)
    drawn = []
    for panel in panels:
        keys = panel_keys(panel, labels, _settings)
        names = {id(result): labels.label(result.group.settings, keys) for result in panel.items}
        lines = [Line(names[id(result)], [run.curve(key) for run in result.group.runs])
                 for result in panel.items]
        levels = _published(report, panel.items, names) if published else []
        drawn.append(CurvePanel(panel.title, lines, levels, panel.subtitle()))
    return drawn, figure_text("", labels, facets), facets


def alpha_panels(report: Report) -> tuple[list[AlphaPanel], FigureText, list[str]]:
    """Final accuracy per alpha for each mixing condition, one panel per facet value, with
    the no-mixing run of the same condition as a band."""
    labels = labelling(report)
    references = {condition(_settings(result), AUGMENTATION_KEYS): result
                  for result in report.groups if is_unmixed(_settings(result))}
    conditions: dict[tuple, list[GroupResult]] = {}
    for result in report.groups:
        alpha = _settings(result).get("alpha")
        if (is_unmixed(_settings(result)) or not is_number(alpha)
                or result.metrics["final_test_acc"].mean is None):
            continue
        conditions.setdefault(condition(_settings(result), ("alpha",)), []).append(result)
    panels, facets = facet(list(conditions.values()), lambda members: _settings(members[0]),
                           labels)
    drawn = []
    for panel in panels:
        keys = [key for key in panel_keys(panel, labels, lambda members: _settings(members[0]))
                if key != "alpha"]
        series, bases = [], {}
        for members in panel.items:
            name = labels.label(_settings(members[0]), keys)
            points = []
            for result in members:
                final = result.metrics["final_test_acc"]
                half = final.half_width
                points.append((float(_settings(result)["alpha"]), 100 * final.mean,
                               None if half is None else 100 * half))
            series.append(AlphaSeries(name, points))
            base = references.get(condition(_settings(members[0]), AUGMENTATION_KEYS))
            if base is not None and base.metrics["final_test_acc"].mean is not None:
                bases[name] = base
        drawn.append(AlphaPanel(panel.title, series, _baselines(bases), panel.subtitle()))
    return drawn, figure_text("", labels, facets), facets


def _baselines(bases: dict[str, GroupResult]) -> list[Level]:
    """One grey band when every series shares its baseline, else one per series' colour."""
    distinct = {id(base) for base in bases.values()}
    levels = []
    for name, base in bases.items():
        final = base.metrics["final_test_acc"]
        low, high = (None, None) if final.low is None else (100 * final.low, 100 * final.high)
        if len(distinct) == 1:
            return [Level(f"no mixing: mean, 95% CI (n={final.n})", 100 * final.mean, low, high)]
        levels.append(Level(f"no mixing for {name} (n={final.n})", 100 * final.mean, low, high,
                            colour_of=name))
    return levels


def reliability_panels(report: Report) -> list[ReliabilityPanel]:
    """One panel per group that has reliability data, in table order (all, not yet cut)."""
    labels = labelling(report)
    return [
        ReliabilityPanel(
            labels.label(result.group.settings),
            table["edges"],
            table["accuracy"],
            table["count"],
            result.metrics["final_test_ece"].mean,
            table["runs"],
            result.metrics["final_test_ece"].n,
        )
        for result in report.groups
        if (table := result.reliability) is not None
    ]


def _status(result: Any) -> str:
    """The short text under a claim's name: verdict, seeds, epochs, what is missing."""
    evidence = result.evidence
    if evidence is None:
        return result.verdict
    adjusted = result.adjusted_verdict
    holm = f" (Holm: {adjusted})" if adjusted and adjusted != result.verdict else ""
    text = f"{result.verdict}{holm}: {evidence.seeds} seeds, {evidence.epochs} epochs"
    if result.verdict != INCONCLUSIVE:
        return text
    missing = ([f"{evidence.min_seeds} seeds"] if evidence.seeds < evidence.min_seeds else []) + (
        [f"{evidence.min_epochs} epochs"]
        if evidence.min_epochs and (evidence.epochs or 0) < evidence.min_epochs else [])
    return text + (f" (needs {', '.join(missing)})" if missing else "")


def claim_rows(report: Report) -> list[ClaimRow]:
    """The claims in the claims table's order, in points (percent) or units."""
    rows = []
    for result in report.claims:
        unit, evidence = scale(result.claim), result.evidence
        row = ClaimRow(result.claim["id"], result.verdict, status=_status(result))
        if evidence is None:  # nothing measured: the published change alone, as judged
            change = judged_change(result.claim)
            row.change = None if change is None else unit * change
            row.tolerance = unit * tolerance(result.claim)
        else:
            effect = evidence.effect
            row.mean = None if effect.mean is None else unit * effect.mean
            if effect.low is not None and effect.high is not None:
                row.low, row.high = unit * effect.low, unit * effect.high
            row.change = None if evidence.change is None else unit * evidence.change
            row.tolerance = unit * evidence.tolerance
        rows.append(row)
    return rows


def claims_unit(report: Report) -> str:
    units = {scale(result.claim) for result in report.claims}
    return "points" if units <= {100.0} else "points, or units for claims not in percent"


def claims_text(report: Report) -> FigureText:
    counts = Counter(result.verdict for result in report.claims)
    tally = ", ".join(f"{count} {verdict}" for verdict, count in counts.items())
    return FigureText("Did the claims hold? Measured paired change (95% CI) beside the "
                      "published change",
                      [f"{len(report.claims)} claims: {tally}; in the order of the claims "
                       "table; under each claim: its verdict, paired seeds and epochs"])


def _by(facets: list[str]) -> str:
    return f" by {', '.join(facets)}" if facets else ""


def alt_texts(report: Report, facets: dict[str, list[str]],
              panels: dict[str, int]) -> dict[str, str]:
    """Alt text for each figure: what it shows, in words."""
    counts = Counter(result.verdict for result in report.claims)
    tally = ", ".join(f"{count} {verdict}" for verdict, count in counts.items())
    groups = f"{len(report.groups)} group{'' if len(report.groups) == 1 else 's'}"
    texts = {
        "claims.png": (f"Forest plot of {len(report.claims)} claims in the order of the claims "
                       "table: each claim's measured paired change with its 95% CI beside the "
                       f"published change and its tolerance band, coloured by verdict ({tally})"),
        "curves_test_acc.png": (
            f"Test accuracy per epoch for {groups} in {panels.get('curves_test_acc.png', 0)}"
            f" panel(s){_by(facets.get('curves_test_acc.png', []))}: mean over seeds with a "
            "min-to-max band; dotted lines: published levels where a claim gives them"),
        "acc_vs_alpha.png": (
            "Final test accuracy against alpha in "
            f"{panels.get('acc_vs_alpha.png', 0)} panel(s){_by(facets.get('acc_vs_alpha.png', []))}"
            ": each mixing method's mean with 95% CI bars; the no-mixing baseline as a band"),
        "curves_train_loss.png": (
            f"Training loss per epoch for {groups} in "
            f"{panels.get('curves_train_loss.png', 0)} panel(s)"
            f"{_by(facets.get('curves_train_loss.png', []))}: mean over seeds with a min-to-max "
            "band"),
        "reliability.png": ("Reliability diagrams at the last epoch, one per group: accuracy per "
                            "confidence bin against the diagonal of perfect calibration"),
    }
    return texts

