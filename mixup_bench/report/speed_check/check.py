"""Summarise the two speed checks that scripts/gpu_check.sh runs on a GPU machine.

1. Equivalence: a sweep with the speed switches on ("fast") and one with them off ("slow"),
   same seeds, should train the same within seed noise. A pair of same-seed runs starts
   from the same weights and sees the same batches and mixing; only the arithmetic
   differs. It is decided on the pair's training loss, the mean over every step of the
   run, which averages hundreds of steps: a short run of many seeds decides where final
   test accuracies of a few short runs (several points apart seed to seed) could not.
   The paired test accuracy difference is reported beside it.
2. Projection: the paper recipe (batch 128, 200 epochs) is started under a time limit, so only
   its first epochs run; its wall time is projected from them against the 8-minute target.

Only run directories are read (docs/run-directory.md), never torch, so the GPU machine's
results can be summarised anywhere.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

from ...config import SPEED_SWITCHES
from ..runs.grouping import pair_runs
from ..runs.rundirs import Run, find_run_directories, load_run
from ..stats import estimate, is_number
from .best import best_setting, overrides
from .markdown import NOT_RUN, render

SWITCH_KEYS = tuple(SPEED_SWITCHES)
# The equivalence margin on the training loss (nats): a defect worth finding (a batch left
# unmixed, steps skipped by a grad scaler, a broken layout) moves it by far more, while
# bf16 against fp32 over one short run moves it by hundredths at most.
TOLERANCE = 0.05
TARGET_SECONDS = 480.0
VERDICT_RULE = (
    "paired same-seed difference of the training loss (the mean over every step of the "
    "run), fast - slow, with its 95% Student-t CI: 'same within noise' when the whole CI "
    f"lies within ±{TOLERANCE:g} nats; 'differs' when it lies wholly outside; 'too noisy to "
    "tell' otherwise; 'not enough runs' when fewer than 2 seeds finished in both settings"
)
PROJECTION_FORMULA = "projected_total = startup + first + (planned_epochs - 1) * steady"


def _runs(roots: list[Path]) -> list[Run]:
    return [load_run(path) for path in find_run_directories(roots)]


def _mean(values: list[float]) -> float | None:
    return statistics.fmean(values) if values else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def _column(run: Run, key: str, skip_first: bool = False) -> list[float]:
    rows = run.metrics[1:] if skip_first else run.metrics
    return [float(row[key]) for row in rows if is_number(row.get(key))]


def _steady_rate(run: Run) -> float | None:
    """Mean images/s after epoch 1 (compilation, cuDNN's search); epoch 1's in a 1-epoch run."""
    return _mean(_column(run, "images_per_s", skip_first=len(run.metrics) > 1))


def _run_train_loss(run: Run) -> float | None:
    """The training loss over every step of the run: the mean of its (equal) epochs'."""
    return _mean(_column(run, "train_loss"))


def _describe(run: Run, setting: str) -> dict[str, Any]:
    """One row of the per-run table; the resolved precision/layout come from the environment."""
    return {
        "seed": run.seed,
        "setting": setting,
        "switches": {key.split(".", 1)[1]: run.settings.get(key) for key in SWITCH_KEYS},
        "resolved_precision": run.environment.get("precision"),
        "resolved_channels_last": run.environment.get("channels_last"),
        "device_name": run.environment.get("device_name"),
        "status": run.status,
        "epochs_completed": run.epochs_completed,
        "final_test_acc": run.metric("final_test_acc"),
        "final_train_loss": run.metric("train_loss"),
        "run_train_loss": _run_train_loss(run),
        "tf32": run.environment.get("tf32"),
        "images_per_s": _steady_rate(run),
        "path": str(run.path),
    }


def verdict(paired: dict[str, Any], tolerance: float = TOLERANCE) -> str:
    """Apply VERDICT_RULE (an equivalence test with margin ±tolerance) to a paired-difference
    estimate (Estimate.to_dict()); identical differences give the interval [mean, mean]."""
    low, high = paired.get("low"), paired.get("high")
    if paired.get("n", 0) >= 2 and paired.get("std") == 0 and paired.get("mean") is not None:
        low = high = paired["mean"]
    if paired.get("n", 0) < 2 or low is None or high is None:
        return "not enough runs"
    if -tolerance <= low and high <= tolerance:
        return "same within noise"
    if low > tolerance or high < -tolerance:
        return "differs"
    return "too noisy to tell"


def equivalence(fast_dirs: list[Path], slow_dirs: list[Path]) -> dict[str, Any]:
    """Compare fast and slow runs seed by seed; unfinished runs are listed, not averaged."""
    if not fast_dirs or not slow_dirs:
        return {"status": NOT_RUN, "reason": "needs both --fast-sweep and --slow-sweep"}
    settings = {"fast": _runs(fast_dirs), "slow": _runs(slow_dirs)}
    notes: list[str] = []
    for name, runs in settings.items():
        if not runs:
            notes.append(f"{name}: no run directories found")
    runs_table = [_describe(run, name) for name, runs in settings.items() for run in runs]
    excluded = [
        {"setting": row["setting"], "seed": row["seed"], "status": row["status"],
         "path": row["path"]}
        for row in runs_table
        if row["status"] != "finished"
    ]
    # The report's own pairing: same settings apart from the switches, same seed.
    pairs = pair_runs([run for run in settings["fast"] if run.finished],
                      [run for run in settings["slow"] if run.finished], SWITCH_KEYS)
    paired_fast = {id(pair.treatment) for pair in pairs}
    unpaired = [run for run in settings["fast"] if run.finished and id(run) not in paired_fast]
    if unpaired:
        notes.append("fast runs without a slow run of the same settings and seed: "
                     + ", ".join(str(run.path) for run in unpaired))
    pairs.sort(key=lambda pair: (0, pair.seed, "") if is_number(pair.seed)
               else (1, 0, str(pair.seed)))
    seeds = [pair.seed for pair in pairs]
    fast = {pair.seed: pair.treatment for pair in pairs}
    slow = {pair.seed: pair.baseline for pair in pairs}
    differences = [
        a - b
        for a, b in ((pair.treatment.metric("final_test_acc"),
                      pair.baseline.metric("final_test_acc")) for pair in pairs)
        if a is not None and b is not None
    ]
    paired = estimate(differences).to_dict()
    paired_loss = estimate(
        a - b for a, b in ((_run_train_loss(pair.treatment), _run_train_loss(pair.baseline))
                           for pair in pairs) if a is not None and b is not None).to_dict()

    curves = {name: {seed: dict(run.curve("test_acc")) for seed, run in chosen.items()}
              for name, chosen in (("fast", fast), ("slow", slow))}
    epochs = sorted({epoch for by_seed in curves.values() for c in by_seed.values() for epoch in c})
    per_epoch = []
    for epoch in epochs:
        values = {name: [c[epoch] for c in by_seed.values() if epoch in c]
                  for name, by_seed in curves.items()}
        paired_epoch = [curves["fast"][seed][epoch] - curves["slow"][seed][epoch]
                        for seed in seeds
                        if epoch in curves["fast"][seed] and epoch in curves["slow"][seed]]
        per_epoch.append({
            "epoch": epoch,
            "fast_test_acc": _mean(values["fast"]),
            "slow_test_acc": _mean(values["slow"]),
            "paired_difference": _mean(paired_epoch),
            "pairs": len(paired_epoch),
        })

    speed = {name: _mean([value for run in chosen.values()
                          if (value := _steady_rate(run)) is not None])
             for name, chosen in (("fast", fast), ("slow", slow))}
    ratio = speed["fast"] / speed["slow"] if speed["fast"] and speed["slow"] else None
    return {
        "status": "done",
        "runs": runs_table,
        "excluded": excluded,
        "paired_seeds": seeds,
        "per_epoch": per_epoch,
        "paired_train_loss_difference": paired_loss,
        "paired_final_test_acc_difference": paired,
        "seed_std_final_test_acc": {
            name: estimate(run.metric("final_test_acc") for run in chosen.values()).std
            for name, chosen in (("fast", fast), ("slow", slow))
        },
        "mean_images_per_s": speed,
        "speed_ratio": ratio,
        "unpaired": [str(run.path) for run in unpaired],
        "verdict": verdict(paired_loss),
        "rule": VERDICT_RULE,
        "notes": notes,
    }


def _single_run(run_dir: Path) -> tuple[Run | None, str | None]:
    found = find_run_directories([run_dir])
    if len(found) != 1:
        return None, f"expected one run directory under {run_dir}, found {len(found)}"
    return load_run(found[0]), None


def projection(
    run_dir: Path | None, launched_at: float | None, exited_at: float | None
) -> dict:
    """Project the full run's wall time from its first epochs (see PROJECTION_FORMULA)."""
    if run_dir is None:
        return {"status": NOT_RUN, "reason": "needs --paper-run"}
    run, problem = _single_run(Path(run_dir))
    if run is None:
        return {"status": NOT_RUN, "reason": problem}
    rows, notes = run.metrics, list(run.problems)
    wall = (run.summary or {}).get("wall_seconds")
    wall = float(wall) if is_number(wall) else None
    planned = run.settings.get("trainer.epochs")
    planned = int(planned) if is_number(planned) else None
    result: dict[str, Any] = {
        "status": "projected",
        "path": str(run.path),
        "run_status": run.status,
        "device_name": run.environment.get("device_name"),
        "planned_epochs": planned,
        "epochs_measured": len(rows),
        "wall_seconds": wall,
        "launched_at": launched_at,
        "exited_at": exited_at,
        "startup": None,
        "first": None,
        "steady": None,
        "median_epoch_seconds": _median(_column(run, "seconds", skip_first=True)),
        "median_images_per_s": _median(_column(run, "images_per_s", skip_first=True)),
        "uses_elapsed_seconds": None,
        "projected_total": None,
        "target_seconds": TARGET_SECONDS,
        "meets_target": None,
        "formula": PROJECTION_FORMULA,
        "basis": "",
        "notes": notes,
    }
    if launched_at is not None and exited_at is not None and wall is not None:
        result["startup"] = max(0.0, (exited_at - launched_at) - wall)
    else:
        notes.append("start-up not measured (needs --launched-at, --exited-at and wall_seconds)")
    if len(rows) < 2 or planned is None:
        result["status"] = "no projection"
        result["basis"] = (f"only {len(rows)} epoch(s) completed; a projection needs at least 2"
                           if len(rows) < 2 else "planned trainer.epochs unknown")
        return result

    elapsed = [row.get("elapsed_seconds") for row in rows]
    seconds = [row.get("seconds") for row in rows]
    if all(is_number(value) for value in elapsed):
        result["uses_elapsed_seconds"] = True
        result["first"] = float(elapsed[0])
        result["steady"] = statistics.median(
            [float(elapsed[k]) - float(elapsed[k - 1]) for k in range(1, len(elapsed))]
        )
    elif all(is_number(value) for value in seconds):
        result["uses_elapsed_seconds"] = False
        later = [float(value) for value in seconds[1:]]
        result["steady"] = statistics.median(later)
        result["first"] = wall - sum(later) if wall is not None else float(seconds[0])
        notes.append(
            "metrics.jsonl has no elapsed_seconds (older run): steady is the median of `seconds` "
            "(train+eval), so checkpoint writes and logging are not counted per epoch; first is "
            + ("wall_seconds minus the later epochs' seconds, which also holds every checkpoint "
               "write and the epoch cut by the timeout (an upper bound)" if wall is not None
               else "epoch 1's seconds alone (no wall_seconds), so setup is missed")
        )
    else:
        result["status"] = "no projection"
        result["basis"] = "metrics.jsonl lacks both elapsed_seconds and seconds"
        return result

    in_process = result["first"] + (planned - 1) * result["steady"]
    result["projected_in_process"] = in_process
    if result["startup"] is not None:
        result["projected_total"] = result["startup"] + in_process
        result["meets_target"] = result["projected_total"] < TARGET_SECONDS
    elif in_process >= TARGET_SECONDS:
        result["meets_target"] = False  # already over without start-up
    full = run.finished and len(rows) >= planned
    if full and launched_at is not None and exited_at is not None:
        result["measured_total"] = exited_at - launched_at
        result["meets_target"] = result["measured_total"] < TARGET_SECONDS
    result["basis"] = (
        f"full run: all {planned} epochs measured" if full else
        f"projection from {len(rows)} measured epochs of {planned} "
        f"(run status {run.status}), not a full run"
    )
    return result


def _device_names(results: dict) -> str | None:
    names = [results["projection"].get("device_name")]
    names += [row.get("device_name") for row in results["equivalence"].get("runs", [])]
    unique = list(dict.fromkeys(name for name in names if name))
    return ", ".join(unique) or None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not usage + message
        raise ValueError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixup-bench speed-check", description=__doc__.split("\n")[0])
    parser.add_argument("--fast-sweep", type=Path, help="sweep (or run) with the switches on")
    parser.add_argument("--slow-sweep", type=Path, help="sweep (or run) with the switches off")
    parser.add_argument("--paper-run", type=Path, help="the time-limited paper-recipe run")
    parser.add_argument("--launched-at", type=float, help="unix seconds at launch")
    parser.add_argument("--exited-at", type=float, help="unix seconds at exit")
    parser.add_argument("--out", type=Path, help="where speed_check.json/.md go")
    parser.add_argument("--best-overrides", type=Path, metavar="BENCH_JSON",
                        help="only print the trainer overrides of the setting in this bench.json "
                             "that would train --epochs epochs at --batch-size soonest (nothing "
                             "when none was measured)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--max-warmup", type=float, help="with --best-overrides: leave out "
                        "settings whose warm-up (compilation) took longer, in seconds")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Write OUT/speed_check.json and .md, print the Markdown; 2 for bad arguments."""
    try:
        arguments = build_parser().parse_args(argv)
        for name in ("fast_sweep", "slow_sweep", "paper_run"):
            path = getattr(arguments, name)
            if path is not None and not path.is_dir():
                raise ValueError(f"--{name.replace('_', '-')}: not a directory: {path}")
        if arguments.launched_at is not None and arguments.exited_at is not None:
            if arguments.exited_at < arguments.launched_at:
                raise ValueError("--exited-at is before --launched-at")
        if arguments.best_overrides is not None:
            bench = json.loads(arguments.best_overrides.read_text())
    except (ValueError, OSError) as error:
        print(f"speed_check: {error}", file=sys.stderr)
        return 2
    if arguments.best_overrides is not None:
        best = best_setting(bench, arguments.batch_size, arguments.epochs,
                            arguments.max_warmup)
        if best is not None:
            print(" ".join(overrides(best["switches"])))
            print(f"speed_check: {best['config']} at {best['images_per_s']:,.0f} img/s, "
                  f"{best['projected_training_seconds']:,.0f} s of training for "
                  f"{arguments.epochs} epochs", file=sys.stderr)
        return 0
    results: dict[str, Any] = {
        "device_name": None,
        "inputs": {key: str(value) if isinstance(value, Path) else value
                   for key, value in vars(arguments).items()},
        "equivalence": equivalence(
            [arguments.fast_sweep] if arguments.fast_sweep else [],
            [arguments.slow_sweep] if arguments.slow_sweep else [],
        ),
        "projection": projection(arguments.paper_run, arguments.launched_at, arguments.exited_at),
    }
    results["device_name"] = _device_names(results)
    markdown = render(results)
    if arguments.out is not None:
        arguments.out.mkdir(parents=True, exist_ok=True)
        (arguments.out / "speed_check.json").write_text(json.dumps(results, indent=2) + "\n")
        (arguments.out / "speed_check.md").write_text(markdown + "\n")
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
