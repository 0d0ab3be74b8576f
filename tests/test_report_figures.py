"""The report read at a glance: every text on the canvas, labels that name only what
varies, small multiples, the claims figure, REPORT.md's headline, and the time it takes.

Runs are written with test_report.write_run (the run-directory contract) and given
calibration data as in test_report_calibration.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mixup_bench.report.build import build_report, figure_plans, write_report
from mixup_bench.report.rendering.figures_claims import VERDICT_COLOURS
from mixup_bench.report.rendering.labels import MAX_LINES_PER_PANEL, Labelling
from mixup_bench.report.rendering.markdown import FIGURES
from mixup_bench.report.rendering.panels import alpha_panels, claim_rows, curve_panels

from .test_report import GAIN_CLAIM, PNG_MAGIC, REPOSITORY, write_run
from .test_report_calibration import SEED_TABLES, set_ece, set_reliability

LONG_KEY = "aug.a_very_long_option_name_for_testing_the_layout_of_labels"
OTHER_KEY = "optim.another_rather_long_setting_name_that_varies"
ALPHAS = (0.2, 0.4, 1.0, 2.0)
LONG_CLAIM = {**GAIN_CLAIM, "id": "a-claim-with-an-unusually-long-identifier-" * 2 + "end"}


def write_groups(root: Path, count: int, seeds: int = 2, epochs: int = 4) -> None:
    """`count` groups of `seeds` runs: aug=none first in every ten, else mixup at four alphas;
    two data fractions; two long-named keys that vary; reliability and ECE for each run."""
    for index in range(count):
        unmixed = index % 10 == 0
        for seed in range(seeds):
            path = write_run(
                root, f"g{index}_s{seed}", final=0.80 + 0.004 * index + 0.003 * seed,
                aug="none" if unmixed else "mixup",
                alpha=None if unmixed else ALPHAS[index % len(ALPHAS)],
                fraction=(1.0, 0.1)[(index // 10) % 2], epochs=epochs, seed=seed,
                extra={LONG_KEY: f"setting_value_number_{index // 4}_with_a_long_name",
                       OTHER_KEY: 0.1 + 0.01 * (index // 8)} if count > 1 else None,
            )
            set_ece(path, 0.02 + 0.001 * index)
            set_reliability(path, SEED_TABLES[seed % 2])


def drawn_texts(figure) -> list:
    """Every Text and Legend the figure draws: visible, non-empty, in a visible axes, and
    for tick labels only those of ticks inside the axis' view."""
    from matplotlib.legend import Legend
    from matplotlib.text import Text

    hidden = set()
    for axes in figure.axes:
        for axis in (axes.xaxis, axes.yaxis):
            low, high = sorted(axis.get_view_interval())
            slack = 1e-9 * max(1.0, abs(high - low))
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                if not low - slack <= tick.get_loc() <= high + slack:
                    hidden |= {id(tick.label1), id(tick.label2)}
    found = []
    for artist in figure.findobj(lambda item: isinstance(item, (Text, Legend))):
        if not artist.get_visible() or id(artist) in hidden:
            continue
        if artist.axes is not None and not artist.axes.get_visible():
            continue
        if isinstance(artist, Text) and not artist.get_text().strip():
            continue
        found.append(artist)
    return found


def assert_on_canvas(figure, name: str) -> None:
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    canvas = figure.bbox
    outside = []
    for artist in drawn_texts(figure):
        box = artist.get_window_extent(renderer)
        if (box.x0 < canvas.x0 - 1 or box.y0 < canvas.y0 - 1 or box.x1 > canvas.x1 + 1
                or box.y1 > canvas.y1 + 1):
            text = artist.get_text() if hasattr(artist, "get_text") else type(artist).__name__
            outside.append(f"{text[:60]!r} at {box.bounds}")
    assert outside == [], f"{name}: {len(outside)} texts leave the canvas {canvas.bounds}"
    everything = figure.get_tightbbox(renderer)  # inches, whatever matplotlib draws
    whole = figure.bbox_inches
    assert everything.x0 >= whole.x0 - 0.01 and everything.y0 >= whole.y0 - 0.01, name
    assert everything.x1 <= whole.x1 + 0.01 and everything.y1 <= whole.y1 + 0.01, name


@pytest.mark.parametrize("count", [1, 5, 20])
def test_every_text_stays_on_the_canvas(tmp_path: Path, count: int) -> None:
    write_groups(tmp_path, count)
    report = build_report([tmp_path], [LONG_CLAIM, GAIN_CLAIM])
    drawn = 0
    for name, plan in figure_plans(report).items():
        figure = plan.make()
        if figure is None:
            assert name == "acc_vs_alpha.png" and count == 1  # one group: nothing to compare
            continue
        drawn += 1
        assert_on_canvas(figure, f"{name} with {count} groups")
    assert drawn == len(FIGURES) - (count == 1)


def test_labels_name_only_what_varies_and_panels_stay_small(tmp_path: Path) -> None:
    write_groups(tmp_path, 20)
    report = build_report([tmp_path], [])
    panels, text, facets = curve_panels(report, "test_acc")
    # Model and data set are the same for every run; ten groups per fraction are too many
    # for one panel, so each fraction's mixup groups are split in two, each part with the
    # run without mixing of that fraction beside them.
    assert facets == ["data.fraction", "aug.name"]
    assert all(len(panel.lines) <= MAX_LINES_PER_PANEL for panel in panels)
    assert [panel.title for panel in panels] == [
        f"data.fraction={fraction}, aug.name=mixup and none ({part} of 2)"
        for fraction in (0.1, 1.0) for part in (1, 2)]
    assert all(panel.lines[0].label.startswith("none") for panel in panels)
    assert sum(len(panel.lines) - 1 for panel in panels) == 18
    labels = [line.label for panel in panels for line in panel.lines]
    for constant in ("weight_decay", "batch_size", "trainer.epochs", "model.name", "cifar10",
                     "data.fraction"):
        assert not any(constant in label for label in labels), constant
    # Within a panel every label differs; constant keys are said once, in the title.
    for panel in panels:
        assert len({line.label for line in panel.lines}) == len(panel.lines)
    header = "\n".join(text.notes)
    assert header.count("trainer.epochs=4") == 1 and "model.name=resnet18" in header
    alpha, _, alpha_facets = alpha_panels(report)
    assert alpha_facets[0] == "data.fraction"
    assert all(panel.levels and panel.levels[0].label.startswith("no mixing") for panel in alpha)


def test_a_label_names_what_departs_from_the_usual_value() -> None:
    settings = [
        {"aug.name": "none", "alpha": None, "optim.lr": 0.1, "aug.lam_min": None},
        {"aug.name": "mixup", "alpha": 0.2, "optim.lr": 0.1, "aug.lam_min": None},
        {"aug.name": "mixup", "alpha": 0.2, "optim.lr": 0.1, "aug.lam_min": 0.3},
        {"aug.name": "mixup", "alpha": 1.0, "optim.lr": 0.05, "aug.lam_min": None},
    ]
    labels = Labelling.of(settings)
    assert [labels.label(item) for item in settings] == [
        "none", "mixup α=0.2", "mixup α=0.2, aug.lam_min=0.3", "mixup α=1.0, optim.lr=0.05"]
    assert labels.usual_text() == "optim.lr=0.1"
    assert labels.constant == {}


def test_claims_figure_follows_the_claims_table(tmp_path: Path) -> None:
    for seed, (base, mixed) in enumerate([(0.900, 0.918), (0.905, 0.922), (0.910, 0.929)]):
        write_run(tmp_path, f"none{seed}", final=base, seed=seed, epochs=200)
        write_run(tmp_path, f"mixup{seed}", final=mixed, seed=seed, aug="mixup", alpha=0.2,
                  epochs=200)
    claims = [GAIN_CLAIM, {**GAIN_CLAIM, "id": "never-run",
                           "treatment": {"aug.name": "cutmix", "model.name": "resnet18"}}]
    report = build_report([tmp_path], claims)
    rows = claim_rows(report)
    assert [row.claim_id for row in rows] == ["test-gain", "never-run"]
    supported = rows[0]
    assert supported.verdict == "supported"
    assert supported.change == pytest.approx(1.8) and supported.mean == pytest.approx(1.8)
    assert supported.low < 1.8 < supported.high
    assert supported.tolerance == pytest.approx(0.218, abs=1e-3)
    assert rows[1].mean is None and rows[1].change == pytest.approx(1.8)
    figure = figure_plans(report)["claims.png"].make()
    [axis] = figure.axes
    names = [label.get_text() for label in axis.get_yticklabels()]
    assert names[0].startswith("test-gain\nsupported: 3 seeds, 200 epochs")
    assert names[1].startswith("never-run\nnot run")
    colour = axis.get_yticklabels()[0].get_color()
    assert colour == VERDICT_COLOURS["supported"]
    assert_on_canvas(figure, "claims.png")


def test_report_md_leads_with_the_claims_and_lists_constants_once(tmp_path: Path) -> None:
    write_groups(tmp_path / "runs", 5)
    out = tmp_path / "out"
    written = write_report(build_report([tmp_path / "runs"], [GAIN_CLAIM]), out, svg=True)
    page = (out / "REPORT.md").read_text()
    assert page.index("## Claims at a glance") < page.index("![Forest plot") < page.index(
        "## Results")
    header = next(line for line in page.splitlines() if line.startswith("| claim |"))
    for column in ("verdict", "published", "measured", "95% CI", "seeds", "epochs"):
        assert column in header
    results = page.split("## Results")[1].split("## Figures")[0]
    table_header = next(line for line in results.splitlines() if line.startswith("| "))
    # data.fraction and trainer.epochs are the same for every run: said once, above.
    assert table_header.startswith(f"| aug.name | alpha | {LONG_KEY} | seeds |")
    assert "optim.weight_decay" not in table_header and "trainer.epochs" not in table_header
    shared = next(line for line in results.splitlines() if line.startswith("Shared by"))
    assert "`optim.weight_decay=0.0005`" in shared and "`trainer.epochs=4`" in shared
    for name in FIGURES:
        image = next(line for line in page.splitlines() if line.endswith(f"]({name})"))
        assert len(image) > len(name) + 40  # alt text that says what the figure shows
        assert (out / name).read_bytes().startswith(PNG_MAGIC)
        svg = (out / name).with_suffix(".svg")
        assert svg in written and svg.read_text().lstrip().startswith("<?xml")
    data = json.loads((out / "report.json").read_text())
    assert set(data["figures"]) == set(FIGURES) and all(data["figures"].values())
    assert set(data["figure_alt"]) == set(FIGURES)
    assert data["shared_settings"]["optim.weight_decay"] == 0.0005
    assert {"claims", "groups", "columns", "unfinished", "figure_notes"} <= set(data)


def test_published_levels_are_reference_lines(tmp_path: Path) -> None:
    for seed in range(2):
        write_run(tmp_path, f"none{seed}", final=0.92, seed=seed)
        write_run(tmp_path, f"mixup{seed}", final=0.93, seed=seed, aug="mixup", alpha=0.2)
    [panel], _, _ = curve_panels(build_report([tmp_path], [GAIN_CLAIM]), "test_acc",
                                 published=True)
    levels = {level.colour_of: level.value for level in panel.levels}
    assert levels == {"none": pytest.approx(92.3), "mixup": pytest.approx(94.1)}


def test_report_on_100_run_directories_is_quick(tmp_path: Path) -> None:
    """10 conditions x 10 seeds, 20 epochs each: well under 10 s on the 2-core development
    machine; the bound leaves room for a shared CI machine."""
    conditions = [("none", None, fraction) for fraction in (1.0, 0.1)] + [
        (aug, alpha, fraction) for aug in ("mixup", "cutmix") for alpha in (0.2, 1.0)
        for fraction in (1.0, 0.1)]
    for index, (aug, alpha, fraction) in enumerate(conditions):
        for seed in range(10):
            write_run(tmp_path / "runs", f"c{index}_s{seed}", final=0.9 + 0.001 * seed,
                      aug=aug, alpha=alpha, fraction=fraction, epochs=20, seed=seed)
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "mixup_bench.cli", "report", str(tmp_path / "runs"), "--out",
         str(tmp_path / "out")], cwd=REPOSITORY, capture_output=True, text=True, timeout=120,
        check=False)
    seconds = time.perf_counter() - start
    assert completed.returncode == 0, completed.stderr
    assert "100 runs, 10 groups" in completed.stdout
    assert seconds < 30, f"report on 100 runs took {seconds:.1f} s"


def test_many_one_at_a_time_switches_share_one_column(tmp_path: Path) -> None:
    """Seven switches each changed alone: the results table names in one column what each
    group changes, the usual values once above it, instead of seven mostly equal columns."""
    usual = {"optim.lr": 0.1, "model.dropout": 0.0, "data.label_noise": 0.0,
             "aug.lam_min": None, "aug.partner": "permutation", "aug.lam_per": "batch",
             "aug.off_last_epochs": 0}
    changes = [{}, {"optim.lr": 0.05}, {"model.dropout": 0.3}, {"data.label_noise": 0.2},
               {"aug.lam_min": 0.3}, {"aug.partner": "dataset"}, {"aug.lam_per": "sample"},
               {"aug.off_last_epochs": 1}]
    for index, change in enumerate(changes):
        write_run(tmp_path / "runs", f"v{index}", final=0.9, aug="mixup", alpha=0.2,
                  extra={**usual, **change})
    write_report(build_report([tmp_path / "runs"], []), tmp_path / "out")
    results = (tmp_path / "out" / "REPORT.md").read_text().split("## Results")[1]
    lines = results.split("## Figures")[0].splitlines()
    assert next(line for line in lines if line.startswith("| ")).startswith(
        "| other settings | seeds |")
    assert "| aug.lam_min=0.3 | 1 |" in results and "| — | 1 |" in results
    note = next(line for line in lines if line.startswith("Other settings"))
    assert "`optim.lr=0.1`" in note and "`aug.partner=permutation`" in note


def test_a_long_claim_id_breaks_after_a_hyphen_not_inside_a_word() -> None:
    from mixup_bench.report.rendering.figures import wrap

    claim = "article-attention-mix-attentivemix-beats-cutmix"
    lines = wrap(claim, 2.0).split("\n")
    assert len(lines) > 1 and "".join(lines) == claim
    assert all(line.endswith("-") for line in lines[:-1])  # every break follows a hyphen
    words = claim.split("-")  # no word is cut: each line holds whole words
    assert all(part in words for line in lines for part in line.rstrip("-").split("-"))
    negative = wrap("optim.weight_decay=-0.0005,sched.milestones=[1,2]", 1.4).split("\n")
    assert not any(line.endswith("=-") for line in negative)  # a minus sign stays with 0.0005
