"""REPORT.md: the report's numbers as GitHub-readable Markdown.

Kept apart from report.py, which computes and writes the numbers, so the
wording and layout of the page can change without touching a statistic.
Accuracies and ECE are fractions in the run files and percentages here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..judgement.verdicts import VERDICT_RULES
from ..runs.rundirs import IGNORED_KEYS
from ..stats import Estimate
from .labels import Labelling, labelling, setting_text, shown
from .markdown_claims import claims_section, headline_section, shown_path, table

if TYPE_CHECKING:
    from .model import Report

# Every figure, in REPORT.md's order, with its heading.
FIGURES = {
    "claims.png": "did the claims hold: measured against published change",
    "curves_test_acc.png": "test accuracy per epoch",
    "acc_vs_alpha.png": "final test accuracy against alpha",
    "curves_train_loss.png": "training loss per epoch",
    "reliability.png": "reliability diagrams at the last epoch, one per group",
}
# How to read each figure, under it.
READING = {
    "claims.png": "Dot and bar: the measured paired change and its 95% CI, coloured by "
                  "verdict (an arrow: the interval goes on beyond the axis); diamond: the "
                  "published change; shaded: the tolerance the verdict allows around it (around "
                  "0 for a claim without a number). Under each claim: its verdict, paired seeds "
                  "and epochs, and what an inconclusive one lacks.",
    "curves_test_acc.png": "One panel per value of the keys that split the groups; a label "
                           "names only what varies, the rest is in the figure's title.",
    "acc_vs_alpha.png": "One panel per condition; the band is the run without mixing of "
                        "the same condition (mean and 95% CI): grey when every series in the "
                        "panel shares it, else one per series in its colour.",
}
MISMATCH = "mismatch_accepted"
# More settings than this vary: the results table keeps a column for each of MAIN_KEYS
# and names the others a group changes in one column.
MAX_SETTING_COLUMNS = 6
MAIN_KEYS = ("aug.name", "alpha", "data.name", "data.fraction", "model.name", "trainer.epochs")


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}"


def mean_and_std(value: Estimate) -> str:
    if value.mean is None:
        return "n/a"
    return (
        percent(value.mean)
        if value.std is None
        else f"{percent(value.mean)} ± {percent(value.std)}"
    )


def confidence(value: Estimate) -> str:
    return "n/a" if value.low is None else f"[{percent(value.low)}, {percent(value.high)}]"


def shared_settings(labels: Labelling) -> list[str]:
    """The settings every group shares, said once."""
    if not labels.constant:
        return []
    listed = ", ".join(f"`{key}={shown(value)}`" for key, value in labels.constant.items())
    return ["Shared by every group (alpha and the aug.* options: by every group that mixes): "
            f"{listed}.", ""]


def results_section(report: Report) -> list[str]:
    labels = labelling(report)
    settings = [key for key in report.columns if key in labels.varying]
    settings += [key for key in labels.varying if key not in settings]
    # Many one-at-a-time switches: one column naming what each group changes beats a
    # column per switch, most of them showing the usual value.
    others = ([key for key in settings if key not in MAIN_KEYS]
              if len(settings) > MAX_SETTING_COLUMNS else [])
    columns = [key for key in settings if key not in others]
    header = columns + (["other settings"] if others else []) + [
        "seeds",
        "final % (mean ± std)",
        "final 95% CI",
        "Δ final vs none (points)",
        "Δ 95% CI",
        "pairs",
        "final ECE % (mean ± std)",
        "ECE 95% CI",
        "ECE n",
    ]
    rows = []
    for result in report.groups:
        final, paired = (
            result.metrics["final_test_acc"],
            (result.paired or {}).get("final_test_acc"),
        )
        ece = result.metrics.get("final_test_ece") or Estimate(0, None, None, None, None, None)
        rows.append(
            [shown(result.group.settings.get(key)) for key in columns]
            + ([", ".join(setting_text(key, result.group.settings.get(key)) for key in others
                          if labels.departs(result.group.settings, key)) or "—"]
               if others else [])
            + [
                final.n,
                mean_and_std(final),
                confidence(final),
                "—" if paired is None else mean_and_std(paired),
                "—" if paired is None else confidence(paired),
                "—" if paired is None else paired.n,
                mean_and_std(ece),
                confidence(ece),
                ece.n,
            ]
        )
    intro = (
        "One row per group of seeds; the columns are the settings that differ between groups. "
        "Accuracies in percent: mean ± sample standard deviation over seeds, and the 95% "
        "confidence interval (Student t). Δ: paired difference to the run without mixing that "
        "has the same other settings and seed. final ECE %: expected calibration error of the "
        "last epoch (15 equal-width confidence bins), lower is better; ECE n counts the seeds "
        "that recorded it (older runs did not). report.csv and report.json hold every number "
        "at full precision, with the last-10-epoch and best-epoch accuracies."
    )
    return (
        ["## Results", "", intro, ""] + shared_settings(labels)
        + (["Other settings: only those a group changes; unless it names them: "
            + ", ".join(f"`{item}`" for item in labels.usual_items(columns)) + ".", ""]
           if others else [])
        + (table(header, rows) if rows else ["No finished runs."])
        + [""]
    )


def provenance_section(report: Report) -> list[str]:
    finished = len(report.runs) - len(report.unfinished)
    lines = [
        "## Provenance",
        "",
        f"- Generated: {report.generated_at}",
        (
            f"- Runs: {len(report.runs)} run directories ({finished} finished,"
            f" {len(report.unfinished)} not finished) under:"
        ),
    ]
    lines += [f"  - `{Path(directory).resolve()}`" for directory in report.directories]
    lines += [f"- Grouping ignores: {', '.join(IGNORED_KEYS)}", ""]
    labels = labelling(report)
    rows = [
        [
            labels.label(result.group.settings),
            ", ".join(map(str, result.epochs)) or "n/a",
            ", ".join(result.devices) or "unknown",
            ", ".join(result.checksums) or "unknown",
            ", ".join(map(str, result.group.seeds)),
        ]
        for result in report.groups
    ]
    return (
        lines + table(["group", "epochs", "devices", "data checksums", "seeds"], rows) + [""]
        if rows
        else lines
    )


def warnings(report: Report) -> list[str]:
    lines = []
    total = len(report.groups)
    mismatched = [result.label for result in report.groups if MISMATCH in result.checksums]
    if mismatched:
        which = (f"all {total} groups" if len(mismatched) == total
                 else f"{len(mismatched)} of {total} groups: {'; '.join(mismatched)}")
        lines.append(
            f"> **Warning:** the data are not the official CIFAR files (checksum {MISMATCH}, "
            f"e.g. the JPEG-compressed copy) for {which}; accuracies are not comparable with "
            "published ones to the last point."
        )
    unverified = [result.label for result in report.groups if "not_verified" in result.checksums]
    if unverified:
        which = (f"all {total} groups" if len(unverified) == total
                 else "; ".join(unverified))
        lines.append(f"> Note: data checksums were not verified for {which}.")
    return lines + [""] if lines else []


def unfinished_section(report: Report) -> list[str]:
    rows = []
    for run in report.unfinished:
        last = run.curve("test_acc")
        why = [run.error] if run.error else []
        rows.append(
            [
                shown_path(run.path, report.directories),
                run.status,
                run.epochs_completed or 0,
                percent(last[-1][1]) if last else "n/a",
                "; ".join(why + run.problems) or "—",
            ]
        )
    lines = ["## Runs not finished", "", "Not counted in any table or verdict.", ""]
    lines += (table(["run", "status", "epochs done", "last test acc %", "why"], rows)
              if rows else ["None."]) + [""]
    noted = [[shown_path(run.path, report.directories), "; ".join(run.problems)]
             for run in report.runs if run.finished and run.problems]
    if noted:  # read in part (a torn metrics line, keys of an older version): counted
        lines += ["### Finished runs read in part", "", "Counted, with these notes.", ""]
        lines += table(["run", "notes"], noted) + [""]
    return lines


def figure_lines(name: str, drawn: dict[str, bool], notes: dict[str, str],
                 alts: dict[str, str]) -> list[str]:
    """The image with its alt text and how to read it; or why it was not drawn."""
    note = notes.get(name)
    if not drawn.get(name):
        return [f"- {name}: not drawn ({note or 'nothing to plot'})", ""]
    lines = [f"![{alts.get(name) or FIGURES[name]}]({name})", ""]
    caption = " ".join(filter(None, [READING.get(name), f"{note}." if note else ""]))
    return lines + ([f"_{caption}_", ""] if caption else [])


def figures_section(drawn: dict[str, bool], notes: dict[str, str] | None = None,
                    alts: dict[str, str] | None = None) -> list[str]:
    lines = ["## Figures", ""]
    for name, title in FIGURES.items():
        if name == "claims.png":  # shown with the headline table
            continue
        lines += [f"### {title[0].upper()}{title[1:]}", ""]
        lines += figure_lines(name, drawn, notes or {}, alts or {})
    return lines


def render_markdown(
    report: Report, drawn: dict[str, bool], notes: dict[str, str] | None = None,
    alts: dict[str, str] | None = None,
) -> str:
    lines = [
        "# mixup-bench report",
        "",
        f"Generated {report.generated_at} from {len(report.runs)} run directories.",
        "",
    ]
    lines += warnings(report) + headline_section(report)
    if report.claims:
        lines += figure_lines("claims.png", drawn, notes or {}, alts or {})
    lines += results_section(report) + figures_section(drawn, notes, alts)
    lines += claims_section(report)
    lines += ["## Verdict rules", "", VERDICT_RULES] + provenance_section(report)
    lines += unfinished_section(report)
    return "\n".join(lines).rstrip() + "\n"
