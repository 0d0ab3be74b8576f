"""The report's figures as small multiples, drawn off-screen with matplotlib's object API.

matplotlib is imported inside the functions, so importing the report (for
`--help`, or in a test) stays fast, and a `Figure` is used with the Agg
canvas instead of pyplot, so no global backend is switched and no display is
ever needed. The functions take plain numbers and text, not runs, so the
figures can be redrawn from report.json alone.

Every text stays on the canvas whatever the number of groups: the figure's
size is computed from its panels and the lines of their legends, labels and
titles are wrapped to the panel's width, each legend sits below its panel,
and constrained layout makes room for all of it. `draw_*` return the Figure
(tests measure every artist; build.FigurePlan saves it).
"""

from __future__ import annotations

import math
import re
import statistics
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Curve = list[tuple[int, float]]  # (epoch, value)
DPI = 100
COLUMNS = 3  # panels per row at most
PANEL_WIDTH = 3.7  # inches, with 3 columns; fewer columns get wider panels
AXES_HEIGHT = 2.3
TEXT = 8  # points: legends, ticks
TITLE = 9
LINE = 1.3  # line height in units of the font size
CHAR = 0.62  # mean character width in units of the font size (DejaVu Sans, generous)
LEGEND_GAP = 34  # points from the axes' bottom to its legend: tick labels and x label
UNMIXED_LABEL = "none"


@dataclass
class Line:
    """One group: its runs' curves (one per seed)."""

    label: str
    curves: list[Curve]


@dataclass
class Level:
    """A horizontal reference: a published level, or the no-mixing baseline and its CI."""

    label: str
    value: float
    low: float | None = None
    high: float | None = None
    colour_of: str | None = None  # the label of the line whose colour it takes


@dataclass
class CurvePanel:
    title: str
    lines: list[Line]
    levels: list[Level] = field(default_factory=list)
    subtitle: str = ""


@dataclass
class AlphaSeries:
    """Mean accuracy per alpha for one mixing condition: (alpha, mean, CI half-width)."""

    label: str
    points: list[tuple[float, float, float | None]] = field(default_factory=list)


@dataclass
class AlphaPanel:
    title: str
    series: list[AlphaSeries]
    levels: list[Level] = field(default_factory=list)
    subtitle: str = ""


@dataclass
class FigureText:
    """The figure's title, then the notes under it (shared settings, usual values)."""

    title: str
    notes: list[str] = field(default_factory=list)


def wrap(text: str, width_inches: float, points: float = TEXT) -> str:
    """`text` broken into lines that fit `width_inches` at `points`: at spaces where it can,
    else after `_ . = , / -` inside a long key or claim id (a word longer than a line is cut)."""
    characters = max(10, int(width_inches * 72 / (CHAR * points)))
    return "\n".join(
        piece for paragraph in text.split("\n")
        for line in (textwrap.wrap(paragraph, characters, break_long_words=False,
                                   break_on_hyphens=False) or [""])
        for piece in (_wrap_line(line, characters) if len(line) > characters else [line]))


def _wrap_line(text: str, width: int) -> list[str]:
    lines, current = [], ""
    for token in re.split(r"(?<=[ _.=,/])|(?<=[^=\s]-)", text):  # not after a minus sign
        while len(token) > width:  # no place to break: cut
            if current:
                lines.append(current.rstrip())
                current = ""
            lines.append(token[:width])
            token = token[width:]
        if current and len(current) + len(token.rstrip()) > width:
            lines.append(current.rstrip())
            current = token.lstrip()
        else:
            current += token
    return lines + [current.rstrip()] if current or not lines else lines


def lines_of(text: str) -> int:
    return text.count("\n") + 1 if text else 0


def inches(lines: int, points: float) -> float:
    return lines * points * LINE / 72


def colours(panels: list[list[str]]) -> list[dict[str, Any]]:
    """Per panel, a colour per label: one colour per label across the figure when ten
    colours are enough, else by position within each panel (at most MAX_LINES_PER_PANEL
    lines, so always distinct there). A panel's one run without mixing is black."""
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    distinct = list(dict.fromkeys(label for labels in panels for label in labels
                                  if label != UNMIXED_LABEL))
    shared = {label: palette(index) for index, label in enumerate(distinct)}
    found = []
    for labels in panels:
        unmixed = [label for label in labels if label.split(",")[0] == UNMIXED_LABEL]
        black = unmixed if len(unmixed) == 1 else [UNMIXED_LABEL]
        own = [label for label in labels if label not in black]
        chosen = shared if len(distinct) <= palette.N else {
            label: palette(index % palette.N) for index, label in enumerate(own)}
        found.append({**chosen, **dict.fromkeys(black, "black")})
    return found


def panel_width(count: int) -> float:
    """Inches per panel: wide when one or two panels fill a row."""
    return {1: 6.4, 2: 4.6}.get(min(COLUMNS, count), PANEL_WIDTH)


def text_width(count: int) -> float:
    """Inches of text (a legend entry, a title) that fit under one of `count` panels."""
    return panel_width(count) - 0.5


def figure_size(count: int, legend_lines: list[int], title_lines: list[int],
                header_lines: int) -> tuple[float, float]:
    """Width and height holding `count` panels, each row as tall as its tallest legend and
    title, under the figure's header."""
    columns = min(COLUMNS, count)
    height = inches(header_lines, TITLE) + 0.3
    for start in range(0, count, columns):
        row = range(start, min(count, start + columns))
        height += (AXES_HEIGHT + inches(max(title_lines[index] for index in row), TITLE)
                   + LEGEND_GAP / 72 + 0.35
                   + inches(max(legend_lines[index] for index in row), TEXT) + 0.15)
    return columns * panel_width(count) + 0.6, height


def new_grid(count: int, legends: list[list[str]], titles: list[str],
             text: FigureText) -> tuple[Any, list[Any]]:
    """A constrained-layout Figure with `count` panels (shared axes) sized for their
    legends and titles; tick labels on every panel's x axis, on the first column's y."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(COLUMNS, count)
    header = wrap("\n".join([text.title, *text.notes]), columns * text_width(count) + 0.8,
                  TITLE)
    figure = Figure(
        figsize=figure_size(count, [sum(map(lines_of, labels)) for labels in legends],
                            [lines_of(title) for title in titles], lines_of(header)),
        dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(math.ceil(count / columns), columns)
    axes: list[Any] = []
    for index in range(count):
        first = axes[0] if axes else None
        axis = figure.add_subplot(grid[index // columns, index % columns], sharex=first,
                                  sharey=first)
        axis.set_title(titles[index], fontsize=TITLE)
        axis.tick_params(labelsize=TEXT, labelleft=index % columns == 0)
        axis.grid(alpha=0.3)
        axes.append(axis)
    figure.suptitle(header, fontsize=TITLE)
    return figure, axes


def legend_below(figure: Any, axis: Any) -> None:
    """The panel's legend in one column under its x label, inside the layout."""
    from matplotlib.transforms import offset_copy

    handles, labels = axis.get_legend_handles_labels()
    if handles:
        axis.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0),
                    bbox_transform=offset_copy(axis.transAxes, figure, 0, -LEGEND_GAP,
                                               units="points"),
                    fontsize=TEXT, frameon=False, ncols=1, borderaxespad=0, handlelength=1.8)


def save(figure: Any, path: Path, formats: Iterable[str] = ("png",)) -> None:
    """`path` (PNG) and, on request, the same figure as SVG beside it."""
    for suffix in formats:
        figure.savefig(Path(path).with_suffix("." + suffix), dpi=DPI, format=suffix)


def _level_label(level: Level, off_scale: bool, above: bool) -> str:
    return level.label + ((" (above the axis)" if above else " (below the axis)")
                          if off_scale else "")


def draw_levels(axis: Any, levels: list[Level], palette: dict[str, Any],
                span: tuple[float, float] | None, width: float) -> None:
    """Reference lines (and bands); a level far off the data's range is named, not drawn."""
    from matplotlib.lines import Line2D

    for level in levels:
        colour = palette.get(level.colour_of or "", "dimgray")
        margin = 0.35 * (span[1] - span[0]) if span else 0.0
        off = span is not None and not span[0] - margin <= level.value <= span[1] + margin
        label = wrap(_level_label(level, off, span is not None and level.value > span[1]),
                     width)
        if off:
            axis.add_line(Line2D([], [], color=colour, linestyle=":", label=label))
            continue
        if level.low is not None and level.high is not None:
            axis.axhspan(level.low, level.high, color=colour, alpha=0.12, linewidth=0)
        axis.axhline(level.value, color=colour, linestyle=":" if level.colour_of else "--",
                     linewidth=1.2, label=label)


def _by_epoch(curves: list[Curve], scale: float) -> dict[int, list[float]]:
    found: dict[int, list[float]] = {}
    for curve in curves:
        for epoch, value in curve:
            found.setdefault(epoch, []).append(value * scale)
    return found


def draw_curves(panels: list[CurvePanel], text: FigureText, ylabel: str,
                scale: float = 1.0) -> Any | None:
    """Per panel, one line per group (mean over seeds per epoch, min-to-max band) and its
    reference levels. None when no run has a point to draw."""
    panels = [CurvePanel(panel.title, [line for line in panel.lines if any(line.curves)],
                         panel.levels, panel.subtitle) for panel in panels]
    panels = [panel for panel in panels if panel.lines]
    if not panels:
        return None
    from matplotlib.ticker import MaxNLocator

    width = text_width(len(panels))
    palettes = colours([[line.label for line in panel.lines] for panel in panels])
    series = [[(line, _by_epoch(line.curves, scale)) for line in panel.lines]
              for panel in panels]
    values = [value for panel in series for _, points in panel
              for epoch_values in points.values() for value in epoch_values]
    span = (min(values), max(values)) if values else None
    legends = [[wrap(f"{line.label} (n={len(line.curves)})", width) for line in panel.lines]
               + [wrap(_level_label(level, True, True), width) for level in panel.levels]
               for panel in panels]
    titles = [wrap("\n".join(filter(None, [panel.title, panel.subtitle])), width + 0.4, TITLE)
              for panel in panels]
    figure, axes = new_grid(len(panels), legends, titles, text)
    for axis, panel, drawn, palette in zip(axes, panels, series, palettes, strict=True):
        for line, points in drawn:
            epochs = sorted(points)
            colour = palette[line.label]
            axis.plot(epochs, [statistics.fmean(points[epoch]) for epoch in epochs],
                      color=colour, linewidth=1.4,
                      label=wrap(f"{line.label} (n={len(line.curves)})", width))
            if len(line.curves) > 1:
                axis.fill_between(epochs, [min(points[epoch]) for epoch in epochs],
                                  [max(points[epoch]) for epoch in epochs], color=colour,
                                  alpha=0.13, linewidth=0)
        draw_levels(axis, panel.levels, palette, span, width)
        axis.set_xlabel("epoch", fontsize=TITLE)
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        legend_below(figure, axis)
    for axis in axes[::min(COLUMNS, len(panels))]:
        axis.set_ylabel(ylabel, fontsize=TITLE)
    return figure


def _alphas(panels: list[AlphaPanel]) -> list[float]:
    return sorted({alpha for panel in panels for item in panel.series
                   for alpha, _, _ in item.points})


def draw_accuracy_vs_alpha(panels: list[AlphaPanel], text: FigureText,
                           ylabel: str) -> Any | None:
    """Per panel, each mixing condition's mean accuracy against alpha with 95% CI bars, and
    the no-mixing baseline as a band. None when no condition was run at two alphas."""
    if not any(len({alpha for alpha, _, _ in item.points}) >= 2
               for panel in panels for item in panel.series):
        return None
    panels = [panel for panel in panels if panel.series]
    from matplotlib.ticker import FixedLocator, NullLocator

    width = text_width(len(panels))
    palettes = colours([[item.label for item in panel.series] for panel in panels])
    legends = [[wrap(item.label, width) for item in panel.series]
               + [wrap(level.label, width) for level in panel.levels] for panel in panels]
    titles = [wrap("\n".join(filter(None, [panel.title, panel.subtitle])), width + 0.4, TITLE)
              for panel in panels]
    figure, axes = new_grid(len(panels), legends, titles, text)
    alphas = _alphas(panels)
    logarithmic = alphas[0] > 0 and alphas[-1] / alphas[0] >= 4
    for axis, panel, palette in zip(axes, panels, palettes, strict=True):
        count = len(panel.series)
        for index, item in enumerate(panel.series):
            points = sorted(item.points)
            # Side by side at one alpha: a small shift keeps the bars apart.
            shift = 0.04 * (index - (count - 1) / 2)
            xs = [alpha * math.exp(shift) if logarithmic else alpha + shift * alphas[-1] / 2
                  for alpha, _, _ in points]
            axis.errorbar(xs, [mean for _, mean, _ in points],
                          yerr=[half or 0.0 for _, _, half in points], marker="o", markersize=4,
                          capsize=3, linewidth=1.4, color=palette[item.label],
                          label=wrap(item.label, width))
        draw_levels(axis, panel.levels, palette, None, width)
        if logarithmic:
            axis.set_xscale("log")
        axis.xaxis.set_major_locator(FixedLocator(alphas))
        axis.xaxis.set_minor_locator(NullLocator())
        axis.set_xticklabels([f"{alpha:g}" for alpha in alphas])
        axis.set_xlabel("alpha", fontsize=TITLE)
        legend_below(figure, axis)
    if logarithmic:
        axes[0].set_xlim(alphas[0] / 1.5, alphas[-1] * 1.5)
    for axis in axes[::min(COLUMNS, len(panels))]:
        axis.set_ylabel(ylabel, fontsize=TITLE)
    return figure
