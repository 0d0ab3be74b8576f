"""The reliability figure: one reliability diagram per group, as small multiples.

Like figures.py, matplotlib is imported inside the function and a `Figure`
is drawn off-screen (Agg, no pyplot), and the input is plain numbers (the
pooled tables report.json also holds), so the figure can be redrawn from
report.json alone.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from pathlib import Path

MAX_RELIABILITY_PANELS = 12
PANEL_COLUMNS = 4


@dataclass
class ReliabilityPanel:
    """One group's reliability diagram, pooled over its seeds (stats.pool_reliability)."""

    label: str
    edges: list[float]
    accuracy: list[float | None]  # per bin, a fraction; None for an empty bin
    count: list[float]
    ece: float | None  # the group's mean final ECE, a fraction
    runs: int  # runs pooled into the bins
    ece_n: int = 0  # seeds the mean ECE is over


def plot_reliability(panels: list[ReliabilityPanel], path: Path) -> bool:
    """Accuracy per confidence bin as bars, with the diagonal of perfect calibration.

    Draws at most MAX_RELIABILITY_PANELS panels (the caller says so when it
    passes more); returns False and writes nothing when there is no panel.
    """
    panels = panels[:MAX_RELIABILITY_PANELS]
    if not panels:
        return False
    from matplotlib.figure import Figure

    columns = min(PANEL_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    figure = Figure(figsize=(3.3 * columns, 3.6 * rows), layout="constrained")
    axes = list(figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).flat)
    for axis, panel in zip(axes, panels, strict=False):
        filled = [
            (lower, upper - lower, value)
            for lower, upper, value in zip(
                panel.edges[:-1], panel.edges[1:], panel.accuracy, strict=True
            )
            if value is not None
        ]
        axis.bar(
            [lower for lower, _, _ in filled],
            [value for _, _, value in filled],
            width=[width for _, width, _ in filled],
            align="edge",
            color="tab:blue",
            edgecolor="black",
            linewidth=0.5,
            label="accuracy",
        )
        axis.plot([0, 1], [0, 1], linestyle="--", color="gray", linewidth=1, label="calibrated")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.set_aspect("equal")
        axis.grid(alpha=0.3)
        ece = "n/a" if panel.ece is None else f"{100 * panel.ece:.2f}%"
        title = textwrap.fill(panel.label, 38) + (
            f"\nmean ECE {ece} (n={panel.ece_n}); bins: {panel.runs} runs"
        )
        axis.set_title(title, fontsize="small")
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize="x-small", loc="upper left")
    figure.supxlabel("confidence (top-1 probability)")
    figure.supylabel("accuracy")
    figure.suptitle("reliability at the last epoch, bins pooled over seeds")
    figure.savefig(path, dpi=100)
    return True
