"""`mixup-bench report DIR... [--out OUT]`: tables, claim verdicts and figures from run directories.

It reads only the run-directory files (docs/run-directory.md) and never
imports torch, so a sweep trained elsewhere can be reported on any machine.
Runs are grouped by the config keys that differ between them (seeds are the
repetitions); each group gets mean, standard deviation and a t-based 95% CI,
and each mixing group the paired difference to the same settings without
mixing. Writes OUT/REPORT.md, OUT/report.csv, OUT/report.json and PNG figures
(SVG too on request), the claims figure first.

The work is split by job: rundirs reads the files, grouping matches runs,
stats computes intervals, verdicts judges the claims in report/judgement/claims/,
model holds the result, panels decides what each figure shows (labels: what
varies), markdown and figures present it; this module builds and writes it,
cli is the command line.
"""

from __future__ import annotations

import csv
import datetime
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .judgement.selection import select
from .judgement.verdicts import evaluate_claims
from .rendering.figures import draw_accuracy_vs_alpha, draw_curves, save
from .rendering.figures_calibration import MAX_RELIABILITY_PANELS, draw_reliability
from .rendering.figures_claims import draw_claims
from .rendering.labels import labelling, shown
from .rendering.markdown import FIGURES, render_markdown
from .rendering.model import GroupResult, Report
from .rendering.panels import (
    alpha_panels,
    alt_texts,
    claim_rows,
    claims_text,
    claims_unit,
    curve_panels,
    figure_text,
    reliability_panels,
)
from .runs.grouping import (
    group_runs,
    is_unmixed,
    pair_runs,
    table_columns,
    varying_keys,
)
from .runs.rundirs import (
    ACCURACY_METRICS,
    AUGMENTATION_KEYS,
    CALIBRATION_METRICS,
    IGNORED_KEYS,
    Run,
    find_run_directories,
    load_run,
)
from .stats import estimate, pool_reliability

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


def build_report(directories: list[Path], claims: list[dict[str, Any]],
                 select_by: str = "final") -> Report:
    """Read every run under `directories`, group them, judge `claims` and choose each
    family's setting on validation accuracy (`select_by`: a key of selection.CRITERIA)."""
    runs = [load_run(path) for path in find_run_directories(directories)]
    columns, groups = summarise_groups(runs)
    generated = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    judgeable = [run for run in runs if run.judgeable]  # never a smoke run's test subset
    return Report(
        list(directories), generated, runs, columns, groups, evaluate_claims(claims, judgeable),
        select([result.group for result in groups], select_by),
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
    report: Report, drawn: dict[str, bool], notes: dict[str, str] | None = None,
    alts: dict[str, str] | None = None,
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
        "selected_on_validation": [selection.to_dict() for selection in report.selections],
        "unfinished": unfinished,
        "figures": {name: bool(drawn.get(name)) for name in FIGURES},
        "figure_notes": dict(notes or {}),
        "figure_alt": {name: text for name, text in (alts or {}).items() if drawn.get(name)},
        "shared_settings": labelling(report).constant,
    }


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


@dataclass
class FigurePlan:
    """One figure: how to draw it (None: nothing to show), and its alt text in REPORT.md."""

    make: Callable[[], Any]
    alt: str

    def draw(self, path: Path, formats: tuple[str, ...] = ("png",)) -> bool:
        """Save the figure as `path` (and the other formats beside it); False when there is
        nothing to show, and then nothing is written."""
        figure = self.make()
        if figure is None:
            return False
        save(figure, path, formats)
        return True


def figure_plans(report: Report) -> dict[str, FigurePlan]:
    """Every figure in REPORT.md's order: the claims first, then the results."""
    test, test_text, test_facets = curve_panels(report, "test_acc", published=True)
    loss, loss_text, loss_facets = curve_panels(report, "train_loss")
    alpha, alpha_text, alpha_facets = alpha_panels(report)
    test_text.title = "Test accuracy per epoch: mean over seeds, band from min to max"
    loss_text.title = "Training loss per epoch: mean over seeds, band from min to max"
    alpha_text.title = ("Final test accuracy against alpha: mean over seeds, bars 95% CI; "
                        "band: no mixing")
    facets = {"curves_test_acc.png": test_facets, "curves_train_loss.png": loss_facets,
              "acc_vs_alpha.png": alpha_facets}
    counts = {"curves_test_acc.png": len(test), "curves_train_loss.png": len(loss),
              "acc_vs_alpha.png": len(alpha)}
    alts = alt_texts(report, facets, counts)
    rows, claims, unit = claim_rows(report), claims_text(report), claims_unit(report)
    makers: dict[str, Callable[[], Any]] = {
        "claims.png": lambda: draw_claims(rows, claims, unit),
        "curves_test_acc.png": lambda: draw_curves(test, test_text, "test accuracy (%)", 100.0),
        "acc_vs_alpha.png": lambda: draw_accuracy_vs_alpha(alpha, alpha_text,
                                                           "final test accuracy (%)"),
        "curves_train_loss.png": lambda: draw_curves(loss, loss_text, "training loss"),
        "reliability.png": lambda: draw_reliability(
            reliability_panels(report), figure_text("", labelling(report))),
    }
    return {name: FigurePlan(makers[name], alts[name]) for name in FIGURES}


def draw_plans(plans: dict[str, FigurePlan], out: Path, formats: tuple[str, ...] = ("png",)
               ) -> dict[str, bool]:
    """Draw every planned figure into `out`; one with nothing to show is skipped, not faked."""
    return {name: plan.draw(out / name, formats) for name, plan in plans.items()}


def write_report(report: Report, out: Path, svg: bool = False) -> list[Path]:
    """Write REPORT.md, report.csv, report.json and the figures (PNG; SVG too with `svg`)
    into `out`; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    formats = ("png", "svg") if svg else ("png",)
    plans = figure_plans(report)
    drawn = draw_plans(plans, out, formats)
    notes, alts = figure_notes(report), {name: plan.alt for name, plan in plans.items()}
    (out / "REPORT.md").write_text(render_markdown(report, drawn, notes, alts), encoding="utf-8")
    rows = csv_rows(report)
    with open(out / "report.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["group"])
        writer.writeheader()
        writer.writerows(rows)
    data = report_data(report, drawn, notes, alts)
    (out / "report.json").write_text(
        json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8"
    )
    figures = [out / name for name, done in drawn.items() if done]
    if svg:
        figures += [(out / name).with_suffix(".svg") for name, done in drawn.items() if done]
    return [out / "REPORT.md", out / "report.csv", out / "report.json"] + figures
