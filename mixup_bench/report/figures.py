"""The report's figures, drawn off-screen with matplotlib's object API.

matplotlib is imported inside the functions, so importing the report (for
`--help`, or in a test) stays fast, and a `Figure` is used instead of pyplot
so no global backend is switched and no display is ever needed. The
functions take plain numbers, not runs, so the figures can be redrawn from
report.json alone.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Curve = list[tuple[int, float]]  # (epoch, value)


def _figure() -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(8, 5), layout="constrained")


def plot_curves(
    series: dict[str, list[Curve]], path: Path, ylabel: str, scale: float = 1.0
) -> bool:
    """One line per label: the mean over its runs per epoch, with a min-to-max band.

    Returns False (and writes nothing) when no run has a point to draw.
    """
    series = {label: [curve for curve in curves if curve] for label, curves in series.items()}
    series = {label: curves for label, curves in series.items() if curves}
    if not series:
        return False
    from matplotlib.ticker import MaxNLocator

    figure = _figure()
    axis = figure.subplots()
    for label, curves in series.items():
        by_epoch: dict[int, list[float]] = {}
        for curve in curves:
            for epoch, value in curve:
                by_epoch.setdefault(epoch, []).append(value * scale)
        epochs = sorted(by_epoch)
        (line,) = axis.plot(
            epochs,
            [statistics.fmean(by_epoch[epoch]) for epoch in epochs],
            label=f"{label} (n={len(curves)})",
        )
        if len(curves) > 1:
            lows = [min(by_epoch[epoch]) for epoch in epochs]
            highs = [max(by_epoch[epoch]) for epoch in epochs]
            axis.fill_between(epochs, lows, highs, color=line.get_color(), alpha=0.2, linewidth=0)
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel(ylabel)
    axis.set_title("mean over seeds; band: min to max")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.savefig(path, dpi=120)
    return True


@dataclass
class AlphaSeries:
    """Mean accuracy per alpha for one condition, and the same condition without mixing."""

    label: str
    points: list[tuple[float, float, float | None]] = field(
        default_factory=list
    )  # (alpha, mean, CI half-width)
    reference: float | None = None
    reference_label: str = "no mixing"


def plot_accuracy_vs_alpha(series: list[AlphaSeries], path: Path, ylabel: str) -> bool:
    """Error bars are 95% CIs; a dashed line marks no mixing. False when no series varies alpha."""
    drawable = [item for item in series if len({alpha for alpha, _, _ in item.points}) >= 2]
    if not drawable:
        return False
    figure = _figure()
    axis = figure.subplots()
    references_drawn = set()
    for item in drawable:
        points = sorted(item.points)
        container = axis.errorbar(
            [alpha for alpha, _, _ in points],
            [mean for _, mean, _ in points],
            yerr=[half or 0.0 for _, _, half in points],
            marker="o",
            capsize=3,
            label=item.label,
        )
        # Mixup and CutMix series of one condition share one no-mixing line.
        if item.reference is not None and item.reference_label not in references_drawn:
            references_drawn.add(item.reference_label)
            color = container.lines[0].get_color()
            axis.axhline(
                item.reference, color=color, linestyle="--", linewidth=1, label=item.reference_label
            )
    axis.set_xlabel("alpha")
    axis.set_ylabel(ylabel)
    axis.set_title("mean over seeds; bars: 95% CI")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    figure.savefig(path, dpi=120)
    return True
