"""claims.png: did each claim hold? A forest plot, one row per claim, in the claims table's order.

Each row shows the measured paired change with its 95% CI (a bar with a dot,
coloured by the verdict) beside the published change (a black diamond) and
the tolerance band the verdict allows around it (around 0 for a claim that
gives only a direction). Changes are signed so that positive is the
direction the claim states. An interval far wider than the rest is cut at
the axis and marked with an arrow, so one noisy claim does not flatten the
others. Like figures.py: matplotlib inside the function, plain numbers in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..judgement.judging import (
    CONTRADICTED,
    INCONCLUSIVE,
    LARGER,
    LARGER_ZERO,
    NOT_RUN,
    SMALLER,
    SMALLER_ZERO,
    SUPPORTED,
)
from .figures import DPI, TEXT, TITLE, FigureText, wrap

VERDICT_COLOURS = {
    SUPPORTED: "#1a9850",
    SMALLER: "#f46d43",
    SMALLER_ZERO: "#fdae61",  # paler: 0 is not excluded either
    LARGER: "#4575b4",
    LARGER_ZERO: "#91bfdb",
    CONTRADICTED: "#d73027",
    INCONCLUSIVE: "#737373",
    NOT_RUN: "#bdbdbd",
}
ROW_HEIGHT = 0.42  # inches per claim
LABEL_WIDTH = 3.2  # inches of a row's label
WIDTH = 10.0
PUBLISHED_BAND, ZERO_BAND = "#9e9ac8", "#d9d9d9"
CUT = 1.0  # an interval reaching beyond the other numbers by more than this span is cut


@dataclass
class ClaimRow:
    """One claim in display units (points for percent claims), signed as the claim states."""

    claim_id: str
    verdict: str
    mean: float | None = None
    low: float | None = None
    high: float | None = None
    change: float | None = None  # the published change; None: a direction only
    tolerance: float = 0.0
    status: str = ""  # the short text at the row's right: seeds, epochs, why undecided


def _limits(rows: list[ClaimRow]) -> tuple[float, float]:
    """The x range: every mean, published change and tolerance band and 0, and the
    intervals unless they reach far beyond those."""
    core = [0.0]
    for row in rows:
        core += [value for value in (row.mean,) if value is not None]
        if row.change is not None:
            core += [row.change - row.tolerance, row.change + row.tolerance]
        else:
            core += [-row.tolerance, row.tolerance]
    low, high = min(core), max(core)
    if high - low < 1.0:  # nothing measured, or all of it tiny: at least a point either way
        low, high = min(low, -0.5), max(high, 0.5)
    reach = (high - low) * CUT
    ends = [value for row in rows for value in (row.low, row.high) if value is not None]
    low = max(min(ends + [low]), low - reach)
    high = min(max(ends + [high]), high + reach)
    pad = 0.06 * (high - low)
    return low - pad, high + pad


def draw_claims(rows: list[ClaimRow], text: FigureText, unit: str = "points") -> Any | None:
    """The forest plot; None when there is no claim."""
    if not rows:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    header = wrap("\n".join([text.title, *text.notes]), WIDTH - 0.6, TITLE)
    # Each row's label: the claim, then its verdict, seeds and epochs, in the verdict's colour.
    names = [wrap(row.claim_id, LABEL_WIDTH, TEXT) + "\n" + wrap(row.status, LABEL_WIDTH, TEXT)
             for row in rows]
    lines = sum(name.count("\n") + 1 for name in names)
    height = (max(ROW_HEIGHT * len(rows), lines * TEXT * 1.5 / 72) + 1.3
              + (header.count("\n") + 1) * TITLE * 1.3 / 72 + 0.6)
    figure = Figure(figsize=(WIDTH, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axis = figure.subplots()
    low, high = _limits(rows)
    axis.set_xlim(low, high)
    axis.axvline(0, color="black", linewidth=0.8)
    for position, row in enumerate(rows):
        colour = VERDICT_COLOURS.get(row.verdict, "gray")
        # The band the verdict allows: around the published change, or around 0 for a
        # measured claim that gives only a direction.
        if row.change is not None or row.mean is not None:
            centre = 0.0 if row.change is None else row.change
            axis.fill_betweenx([position - 0.32, position + 0.32], centre - row.tolerance,
                               centre + row.tolerance, linewidth=0, alpha=0.55,
                               color=PUBLISHED_BAND if row.change is not None else ZERO_BAND)
        if row.change is not None:
            # On top of the measured dot (which is larger), so both stay visible.
            axis.plot(row.change, position, marker="D", color="black", markersize=5,
                      linestyle="none", zorder=4)
        if row.low is not None and row.high is not None:
            shown_low, shown_high = max(row.low, low), min(row.high, high)
            axis.plot([shown_low, shown_high], [position, position], color=colour, linewidth=2.6,
                      solid_capstyle="butt")
            for end, edge, marker in ((row.low, low, "<"), (row.high, high, ">")):
                if (end < edge) if marker == "<" else (end > edge):
                    axis.plot(edge, position, marker=marker, color=colour, markersize=7)
        if row.mean is not None and low <= row.mean <= high:
            axis.plot(row.mean, position, marker="o", color=colour, markersize=7,
                      markeredgecolor="white", linestyle="none")
    axis.set_ylim(len(rows) - 0.5, -0.5)
    axis.set_yticks(range(len(rows)), names, fontsize=TEXT)
    axis.tick_params(axis="y", length=0)
    for label, row in zip(axis.get_yticklabels(), rows, strict=True):
        label.set_color(VERDICT_COLOURS.get(row.verdict, "black") if row.verdict != NOT_RUN
                        else "#969696")
    axis.tick_params(axis="x", labelsize=TEXT)
    axis.grid(axis="x", alpha=0.3)
    axis.set_xlabel(f"change in the direction the claim states ({unit}; > 0: as claimed)",
                    fontsize=TITLE)
    verdicts = list(dict.fromkeys(row.verdict for row in rows))
    handles = [Line2D([], [], color="gray", marker="o", linewidth=2.6,
                      label="measured paired change, 95% CI")]
    if any(row.change is not None for row in rows):
        handles += [Line2D([], [], color="black", marker="D", linestyle="none",
                           label="published change"),
                    Patch(color=PUBLISHED_BAND, alpha=0.55, label="published ± tolerance")]
    if any(row.change is None and row.mean is not None for row in rows):
        handles.append(Patch(color=ZERO_BAND, alpha=0.55,
                             label="0 ± tolerance (no number published)"))
    handles += [Patch(color=VERDICT_COLOURS.get(verdict, "gray"), label=verdict)
                for verdict in verdicts]
    figure.legend(handles=handles, loc="outside lower center", ncols=4, fontsize=TEXT,
                  frameon=False)
    figure.suptitle(header, fontsize=TITLE)
    return figure
