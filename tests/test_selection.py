"""report: the setting chosen on the validation split, and the test set's choice only beside it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mixup_bench.report.build import build_report, write_report
from mixup_bench.report.cli import main as report_main
from mixup_bench.report.judgement.selection import OPTIMISTIC

from .test_report import write_run


def write_validated(root: Path, name: str, *, alpha: float, seed: int, val: list[float],
                    test: float, fraction: float = 1.0, val_fraction: float = 0.1) -> Path:
    """A mixup run with a validation curve `val` (one value per epoch) and final test `test`.

    summary.json holds final_val_acc; last10_median_val_acc is left to be computed from
    metrics.jsonl, as the report does for runs that lack it.
    """
    path = write_run(root, name, final=test, aug="mixup", alpha=alpha, seed=seed,
                     fraction=fraction, epochs=len(val),
                     extra={"data.val_fraction": val_fraction})
    lines = [json.loads(line) for line in (path / "metrics.jsonl").read_text().splitlines()]
    for line, value in zip(lines, val, strict=True):
        line.update(val_acc=value, val_loss=1.0, val_ece=0.05)
    (path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    summary = json.loads((path / "summary.json").read_text())
    summary["final_val_acc"] = val[-1]
    (path / "summary.json").write_text(json.dumps(summary))
    return path


# alpha -> (validation accuracy, test accuracy); the test set prefers 1.0, validation 0.4.
SWEEP = {0.1: (0.80, 0.900), 0.4: (0.85, 0.880), 1.0: (0.82, 0.910)}


def write_sweep(root: Path, fraction: float = 1.0, shift: float = 0.0) -> None:
    for alpha, (val, test) in SWEEP.items():
        for seed in range(3):
            write_validated(root, f"f{fraction}_a{alpha}_s{seed}", alpha=alpha, seed=seed,
                            val=[val - 0.1, val + shift], test=test + 0.002 * seed,
                            fraction=fraction)


def test_chooses_on_validation_and_reports_that_choices_test_accuracy(tmp_path):
    write_sweep(tmp_path)
    report = build_report([tmp_path], [])
    (selection,) = report.selections
    assert len(selection.candidates) == 3
    assert selection.chosen.group.settings["alpha"] == 0.4
    assert selection.chosen.validation.mean == pytest.approx(0.85)
    assert selection.chosen.test.n == 3
    assert selection.chosen.test.mean == pytest.approx(0.882)
    assert selection.chosen.test.low < 0.882 < selection.chosen.test.high
    assert selection.optimistic.group.settings["alpha"] == 1.0 and not selection.agrees


def test_one_choice_per_condition_and_runs_without_validation_take_no_part(tmp_path):
    write_sweep(tmp_path / "full")
    write_sweep(tmp_path / "tenth", fraction=0.1)
    for seed in range(3):  # better on test than anything, but it has no validation split
        write_run(tmp_path / "noval", f"a2_s{seed}", final=0.99, aug="mixup", alpha=2.0,
                  seed=seed)
    report = build_report([tmp_path], [])
    assert [selection.family["data.fraction"] for selection in report.selections] == [0.1, 1.0]
    assert all(len(selection.candidates) == 3 for selection in report.selections)
    assert all(selection.optimistic.group.settings["alpha"] == 1.0
               for selection in report.selections)


def test_last10_median_criterion_reads_the_validation_curve(tmp_path):
    # Final validation accuracy prefers alpha 0.1; the median of its epochs prefers 0.4.
    for seed in range(2):
        write_validated(tmp_path, f"a0.1_s{seed}", alpha=0.1, seed=seed,
                        val=[0.50, 0.50, 0.90], test=0.9)
        write_validated(tmp_path, f"a0.4_s{seed}", alpha=0.4, seed=seed,
                        val=[0.80, 0.80, 0.80], test=0.9)
    final, median = (build_report([tmp_path], [], select_by).selections[0]
                     for select_by in ("final", "last10_median"))
    assert final.chosen.group.settings["alpha"] == 0.1
    assert median.chosen.group.settings["alpha"] == 0.4
    assert median.chosen.validation.mean == pytest.approx(0.80)


def test_report_files_and_command_line_name_the_choice_and_label_the_test_choice(tmp_path,
                                                                                  capsys):
    write_sweep(tmp_path / "runs")
    out = tmp_path / "out"
    assert report_main([str(tmp_path / "runs"), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert ("selected on validation: α=0.4: validation 85.00%, test 88.20% [" in printed
            and f"(n=3); {OPTIMISTIC}: α=1.0" in printed)
    markdown = (out / "REPORT.md").read_text()
    section = markdown.split("## Selected on validation")[1].split("\n## ")[0]
    assert f"| {OPTIMISTIC} | its test % |" in section
    row = [line for line in section.splitlines() if line.startswith("| all runs")][0]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    assert cells[:5] == ["all runs", "3", "α=0.4", "85.00", "88.20 ± 0.20"]
    assert cells[7:] == ["α=1.0", "91.20 ± 0.20"]
    data = json.loads((out / "report.json").read_text())["selected_on_validation"][0]
    assert data["selected_by"] == "final_val_acc" and data["test_metric"] == "final_test_acc"
    assert data["chosen_on_validation"]["settings"]["alpha"] == 0.4
    assert data["optimistic_chosen_on_test"]["settings"]["alpha"] == 1.0


def test_no_section_without_validation_runs(tmp_path):
    for alpha in (0.2, 1.0):
        write_run(tmp_path, f"a{alpha}", final=0.9, aug="mixup", alpha=alpha)
    report = build_report([tmp_path], [])
    assert report.selections == []
    write_report(report, tmp_path / "out")
    assert "Selected on validation" not in (tmp_path / "out" / "REPORT.md").read_text()
