"""`mixup-bench report DIR... [--out OUT]`: tables, claim verdicts and figures from run directories.

It reads only the run-directory files (docs/run-directory.md) and never
imports torch, so a sweep trained elsewhere can be reported on any machine.
Runs are grouped by the config keys that differ between them (seeds are the
repetitions); each group gets mean, standard deviation and a t-based 95% CI,
and each mixing group the paired difference to the same settings without
mixing. Writes OUT/REPORT.md, OUT/report.csv, OUT/report.json and PNG figures.

The work is split by job: rundirs reads the files, grouping matches runs,
stats computes intervals, verdicts judges the claims in report/claims/,
model holds the result, markdown and figures present it; this module builds
and writes it, cli is the command line.
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .figures import AlphaSeries, plot_accuracy_vs_alpha, plot_curves
from .figures_calibration import (
    MAX_RELIABILITY_PANELS,
    ReliabilityPanel,
    plot_reliability,
)
from .grouping import (
    condition,
    group_runs,
    is_unmixed,
    pair_runs,
    table_columns,
    varying_keys,
)
from .markdown import FIGURES, render_markdown, shown
from .model import GroupResult, Report
from .rundirs import (
    ACCURACY_METRICS,
    AUGMENTATION_KEYS,
    CALIBRATION_METRICS,
    IGNORED_KEYS,
    Run,
    find_run_directories,
    load_run,
)
from .stats import estimate, is_number, pool_reliability
from .verdicts import evaluate_claims

# report.csv column suffix -> Estimate field.
CSV_PARTS = {"n": "n", "mean": "mean", "std": "std", "ci_low": "low", "ci_high": "high"}
# Estimated per group over seeds (and paired to aug=none): accuracies, then calibration.
GROUP_METRICS = ACCURACY_METRICS + CALIBRATION_METRICS


def group_label(settings: dict[str, Any], keys: Iterable[str]) -> str:
    parts = [f"{key}={shown(settings.get(key))}" for key in keys]
    return ", ".join(parts) if parts else "all runs"


def summarise_groups(runs: list[Run]) -> tuple[list[str], list[GroupResult]]:
    """Table columns, and per group the estimates over seeds and the paired change to aug=none."""
    readable = [run for run in runs if run.settings]
    columns = table_columns(readable)
    varying = [key for key in columns if key in set(varying_keys(readable))]
    unmixed = [run for run in runs if run.finished and is_unmixed(run.settings)]
    results = []
    for group in group_runs(runs, columns):
        metrics = {name: estimate(run.metric(name) for run in group.runs) for name in GROUP_METRICS}
        paired = None
        if not is_unmixed(group.settings):
            pairs = pair_runs(group.runs, unmixed, AUGMENTATION_KEYS)
            paired = {
                name: estimate(
                    _difference(pair.treatment.metric(name), pair.baseline.metric(name))
                    for pair in pairs
                )
                for name in GROUP_METRICS
            }
        pooled = pool_reliability(run.reliability for run in group.runs)
        label = group_label(group.settings, varying)
        results.append(GroupResult(group, label, metrics, paired, pooled))
    return columns, results


def _difference(treated: float | None, base: float | None) -> float | None:
    return None if treated is None or base is None else treated - base


def build_report(directories: list[Path], claims: list[dict[str, Any]]) -> Report:
    """Read every run under `directories`, group them and judge `claims`."""
    runs = [load_run(path) for path in find_run_directories(directories)]
    columns, groups = summarise_groups(runs)
    generated = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return Report(
        list(directories), generated, runs, columns, groups, evaluate_claims(claims, runs)
    )


def csv_rows(report: Report) -> list[dict[str, Any]]:
    """One row per group; accuracies and ECE as fractions, as in the run files."""
    rows = []
    for result in report.groups:
        row: dict[str, Any] = {"group": result.label}
        row.update({key: result.group.settings.get(key) for key in report.columns})
        row.update(
            {
                "n": result.metrics["final_test_acc"].n,
                "seeds": " ".join(map(str, result.group.seeds)),
            }
        )
        for name in GROUP_METRICS:
            for prefix, value in (
                (name, result.metrics[name]),
                (f"paired_diff_{name}", (result.paired or {}).get(name)),
            ):
                for column, part in CSV_PARTS.items():
                    row[f"{prefix}_{column}"] = None if value is None else getattr(value, part)
        row.update(
            {
                "epochs": " ".join(map(str, result.epochs)),
                "devices": "; ".join(result.devices),
                "data_checksums": " ".join(result.checksums),
            }
        )
        rows.append(row)
    return rows


def report_data(
    report: Report, drawn: dict[str, bool], notes: dict[str, str] | None = None
) -> dict[str, Any]:
    """report.json: REPORT.md's numbers (as fractions), the verdicts and the unfinished runs."""

    groups = [
        {
            "label": result.label,
            "settings": result.group.settings,
            "seeds": result.group.seeds,
            "runs": [str(run.path) for run in result.group.runs],
            "epochs": result.epochs,
            "devices": result.devices,
            "data_checksums": result.checksums,
            "metrics": {name: value.to_dict() for name, value in result.metrics.items()},
            "paired_diff_vs_none": None
            if result.paired is None
            else {name: value.to_dict() for name, value in result.paired.items()},
            "reliability": result.reliability,
        }
        for result in report.groups
    ]
    unfinished = [
        {
            "path": str(run.path),
            "status": run.status,
            "error": run.error,
            "problems": run.problems,
            "epochs_completed": run.epochs_completed,
            "final_test_acc": run.metric("final_test_acc"),
        }
        for run in report.unfinished
    ]
    return {
        "generated_at": report.generated_at,
        "directories": [str(Path(path).resolve()) for path in report.directories],
        "runs": {
            "total": len(report.runs),
            "finished": len(report.runs) - len(report.unfinished),
            "not_finished": len(unfinished),
        },
        "columns": report.columns,
        "ignored_keys": list(IGNORED_KEYS),
        "groups": groups,
        "claims": [result.to_dict() for result in report.claims],
        "unfinished": unfinished,
        "figures": {name: bool(drawn.get(name)) for name in FIGURES},
        "figure_notes": dict(notes or {}),
    }


def alpha_series(report: Report) -> list[AlphaSeries]:
    """Final accuracy per alpha for each mixing condition, with its unmixed reference."""
    references = {
        condition(result.group.settings, AUGMENTATION_KEYS): result.metrics["final_test_acc"].mean
        for result in report.groups
        if is_unmixed(result.group.settings)
    }
    readable = [run for run in report.runs if run.settings]
    varying = set(varying_keys(readable)) - {"alpha"}
    varying = [key for key in table_columns(readable) if key in varying]
    series: dict[tuple, AlphaSeries] = {}
    for result in report.groups:
        alpha, final = result.group.settings.get("alpha"), result.metrics["final_test_acc"]
        if is_unmixed(result.group.settings) or not is_number(alpha) or final.mean is None:
            continue
        key = condition(result.group.settings, ("alpha",))
        if key not in series:
            reference = references.get(condition(result.group.settings, AUGMENTATION_KEYS))
            condition_label = group_label(
                result.group.settings, [name for name in varying if name != "aug.name"]
            )
            series[key] = AlphaSeries(
                group_label(result.group.settings, varying),
                [],
                None if reference is None else 100 * reference,
                f"no mixing, {condition_label}",
            )
        half = final.half_width
        series[key].points.append(
            (float(alpha), 100 * final.mean, None if half is None else 100 * half)
        )
    return list(series.values())


def reliability_panels(report: Report) -> list[ReliabilityPanel]:
    """One panel per group that has reliability data, in table order (all, not yet cut)."""
    return [
        ReliabilityPanel(
            result.label,
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


def figure_notes(report: Report) -> dict[str, str]:
    """What REPORT.md says about a figure beyond showing it: cut-offs and left-out groups."""
    panels = len(reliability_panels(report))
    if not panels:
        return {"reliability.png": "no finished run has `reliability` in summary.json"}
    notes = []
    if panels > MAX_RELIABILITY_PANELS:
        notes.append(f"only the first {MAX_RELIABILITY_PANELS} of {panels} groups are shown")
    missing = len(report.groups) - panels
    if missing:
        notes.append(f"{missing} group(s) without reliability data in summary.json are left out")
    return {"reliability.png": "; ".join(notes)} if notes else {}


def draw_figures(report: Report, out: Path) -> dict[str, bool]:
    """Draw the PNGs into `out`; a figure with nothing to show is skipped, not faked."""

    def curves(key: str) -> dict[str, list]:
        return {
            result.label: [run.curve(key) for run in result.group.runs] for result in report.groups
        }

    return {
        "curves_test_acc.png": plot_curves(
            curves("test_acc"), out / "curves_test_acc.png", "test accuracy (%)", 100.0
        ),
        "acc_vs_alpha.png": plot_accuracy_vs_alpha(
            alpha_series(report), out / "acc_vs_alpha.png", "final test accuracy (%)"
        ),
        "curves_train_loss.png": plot_curves(
            curves("train_loss"), out / "curves_train_loss.png", "training loss"
        ),
        "reliability.png": plot_reliability(reliability_panels(report), out / "reliability.png"),
    }


def write_report(report: Report, out: Path) -> list[Path]:
    """Write REPORT.md, report.csv, report.json and the figures into `out`; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    drawn, notes = draw_figures(report, out), figure_notes(report)
    (out / "REPORT.md").write_text(render_markdown(report, drawn, notes), encoding="utf-8")
    rows = csv_rows(report)
    with open(out / "report.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["group"])
        writer.writeheader()
        writer.writerows(rows)
    data = report_data(report, drawn, notes)
    (out / "report.json").write_text(
        json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8"
    )
    return [out / "REPORT.md", out / "report.csv", out / "report.json"] + [
        out / name for name, done in drawn.items() if done
    ]
