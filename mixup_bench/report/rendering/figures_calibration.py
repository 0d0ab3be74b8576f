"""The reliability figure: one reliability diagram per group, as small multiples.

Like figures.py, matplotlib is imported inside the function and a `Figure`
is drawn off-screen (Agg, no pyplot), and the input is plain numbers (the
pooled tables report.json also holds), so the figure can be redrawn from
report.json alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .figures import DPI, LINE, TEXT, TITLE, FigureText, lines_of, wrap

MAX_RELIABILITY_PANELS = 12
PANEL_COLUMNS = 4
PANEL_WIDTH = 3.0  # inches


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


def draw_reliability(panels: list[ReliabilityPanel], text: FigureText | None = None) -> Any:
    """Accuracy per confidence bin as bars, with the diagonal of perfect calibration.

    Draws at most MAX_RELIABILITY_PANELS panels (the caller says so when it
    passes more); returns None when there is no panel.
    """
    panels = panels[:MAX_RELIABILITY_PANELS]
    if not panels:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(PANEL_COLUMNS, len(panels))
    rows = math.ceil(len(panels) / columns)
    titles = [
        wrap(panel.label, PANEL_WIDTH - 0.3, TEXT)
        + f"\nmean ECE {'n/a' if panel.ece is None else f'{100 * panel.ece:.2f}%'}"
        f" (n={panel.ece_n}); bins: {panel.runs} runs"
        for panel in panels
    ]
    text = text or FigureText("")
    header = wrap("\n".join(["reliability at the last epoch, bins pooled over seeds",
                              *([text.title] if text.title else []), *text.notes]),
                  columns * PANEL_WIDTH - 0.4, TITLE)
    title_height = max(lines_of(title) for title in titles) * TEXT * LINE / 72
    figure = Figure(
        figsize=(PANEL_WIDTH * columns + 0.4,
                 (PANEL_WIDTH - 0.4 + title_height) * rows + lines_of(header) * TITLE * LINE / 72
                 + 0.7),
        dpi=DPI, layout="constrained",
    )
    FigureCanvasAgg(figure)
    axes = list(figure.subplots(rows, columns, squeeze=False, sharex=True, sharey=True).flat)
    for axis, panel, title in zip(axes, panels, titles, strict=False):
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
        axis.tick_params(labelsize=TEXT)
        axis.set_title(title, fontsize=TEXT)
    for axis in axes[len(panels) :]:
        axis.set_visible(False)
    axes[0].legend(fontsize="x-small", loc="upper left")
    figure.supxlabel("confidence (top-1 probability)", fontsize=TITLE)
    figure.supylabel("accuracy", fontsize=TITLE)
    figure.suptitle(header, fontsize=TITLE)
    return figure
