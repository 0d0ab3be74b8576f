"""REPORT.md: the report's numbers as GitHub-readable Markdown.

Kept apart from report.py, which computes and writes the numbers, so the
wording and layout of the page can change without touching a statistic.
Accuracies and ECE are fractions in the run files and percentages here.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .rundirs import IGNORED_KEYS
from .stats import Estimate
from .verdicts import VERDICT_RULES, metric_name

if TYPE_CHECKING:
    from .model import Report

FIGURES = {
    "curves_test_acc.png": "test accuracy per epoch",
    "acc_vs_alpha.png": "final test accuracy against alpha",
    "curves_train_loss.png": "training loss per epoch",
    "reliability.png": "reliability diagrams at the last epoch, one per group",
}
MISMATCH = "mismatch_accepted"


def shown(value: Any) -> str:
    """A setting as a table shows it; None (e.g. alpha without mixing) as a dash."""
    return "—" if value is None else str(value)


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


def results_section(report: Report) -> list[str]:
    header = report.columns + [
        "n",
        "final % (mean ± std)",
        "final 95% CI",
        "last10 %",
        "best %",
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
            [shown(result.group.settings.get(key)) for key in report.columns]
            + [
                final.n,
                mean_and_std(final),
                confidence(final),
                mean_and_std(result.metrics["last10_test_acc"]),
                mean_and_std(result.metrics["best_test_acc"]),
                "—" if paired is None else mean_and_std(paired),
                "—" if paired is None else confidence(paired),
                "—" if paired is None else paired.n,
                mean_and_std(ece),
                confidence(ece),
                ece.n,
            ]
        )
    intro = (
        "Accuracies in percent: mean ± sample standard deviation over seeds, and the 95% "
        "confidence interval (Student t). Δ: paired difference to the run without mixing that "
        "has the same other settings and seed. best % is chosen on the test set and is optimistic. "
        "final ECE %: expected calibration error of the last epoch (15 equal-width confidence "
        "bins), lower is better; ECE n counts the seeds that recorded it (older runs did not)."
    )
    return (
        ["## Results", "", intro, ""]
        + (table(header, rows) if rows else ["No finished runs."])
        + [""]
    )


def _points(value: float | None, claim: dict[str, Any]) -> str:
    if value is None:
        return "—"
    return f"{value * (100 if claim.get('percent', True) else 1):.2f}"


def claims_section(report: Report) -> list[str]:
    lines = ["## Claims", "",
             "Verdicts by the rules below; the Holm column controls the chance of any false "
             "\"excludes 0\" over all the claims tested. Detectable: the smallest change these "
             "seeds would detect with 80% power (points); seeds to decide: how many paired "
             "seeds would detect the published change.", ""]
    rows = []
    for result in report.claims:
        data = result.to_dict()
        rows.append([result.claim["id"], f"**{result.verdict}**",
                     data["adjusted_verdict"], result.published, result.measured,
                     _points(data["detectable_change"], result.claim),
                     "—" if data["seeds_to_decide"] is None else data["seeds_to_decide"]])
    lines += table(["claim", "verdict", "Holm-adjusted", "published", "measured",
                    "detectable", "seeds to decide"], rows)
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
    return lines + [""]


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
    rows = [
        [
            result.label,
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
    return (
        lines
        + (
            table(["run", "status", "epochs done", "last test acc %", "why"], rows)
            if rows
            else ["None."]
        )
        + [""]
    )


def figures_section(drawn: dict[str, bool], notes: dict[str, str] | None = None) -> list[str]:
    lines = ["## Figures", ""]
    for name, title in FIGURES.items():
        note = (notes or {}).get(name)
        if drawn.get(name):
            lines.append(f"![{title}]({name})")
            if note:
                lines += ["", f"_{name}: {note}._"]
        else:
            lines.append(f"- {name}: not drawn ({note or 'nothing to plot'})")
        lines.append("")
    return lines


def render_markdown(
    report: Report, drawn: dict[str, bool], notes: dict[str, str] | None = None
) -> str:
    lines = [
        "# mixup-bench report",
        "",
        f"Generated {report.generated_at} from {len(report.runs)} run directories.",
        "",
    ]
    lines += warnings(report) + results_section(report) + claims_section(report)
    lines += ["## Verdict rules", "", VERDICT_RULES] + provenance_section(report)
    lines += unfinished_section(report) + figures_section(drawn, notes)
    return "\n".join(lines).rstrip() + "\n"
