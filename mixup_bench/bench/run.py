"""`mixup-bench bench`: what the device pipeline's speed switches buy, and what mixing costs.

The trainer keeps CIFAR-10 on the device, crops, flips and mixes whole
batches there, and can use autocast, channels_last and torch.compile. This
command measures, with the project's own pieces (DeviceLoader, build_mixer,
build_model, train_one_epoch, evaluate) and for aug none / mixup / cutmix:

- images/s, seconds per 50,000-image epoch plus evaluation of 10,000 test
  images, and peak memory, at each batch size, in the trainer's default
  setting ("fast"), in interleaved rounds (the median counts) so that the
  mixing overhead is not a drift between settings;
- the fast setting against each switch turned the other way, one at a time
  (torch.compile's CUDA-graph mode, torch.compile, cudnn.benchmark, fused SGD,
  channels_last, precision), with the warm-up time (compilation) apart;
- on CUDA, host synchronisations per training step of every setting, under
  torch.cuda.set_sync_debug_mode("warn") (syncs.py; the target, for the fast
  setting, is 0);
- the classic pipeline (classic.py: DataLoader workers, PIL transforms, fp32);
- the data pipeline alone (crop, flip, normalise, mix; no model), both ways;
- the project's speed targets (results.py) against the best setting measured.

Timed regions are closed by torch.cuda.synchronize on CUDA and timed with
perf_counter. Peaks are reset after each setting's warm-up steps, so they
describe steady training, not compilation or cuDNN's algorithm search.
Results go to OUT/bench.json and OUT/bench.md.

plan holds the arguments and the plan, this module the run and `main`,
measure the measuring, classic the baseline pipeline, results the ratios and
the two files, profile `--profile`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timezone
from functools import partial
from typing import Any

from .measure import PeakMemory
from .plan import (
    EPOCH_IMAGES,
    TEST_IMAGES,
    BenchError,
    Plan,
    log,
    parse_args,
    pipeline_step_count,
    resolve_plan,
    switch_aug,
)

# --- the whole bench -----------------------------------------------------------------


def _measure_classic(plan: Plan, train, test, defaults: dict[str, Any],
                     memory: PeakMemory) -> list[dict[str, Any]]:
    from . import classic
    from .measure import timed

    base = {"pipeline": "classic", "config": "classic", "switches": None}
    entries = classic.measure(plan, train, test, defaults, partial(timed, plan.device, memory),
                              log, pipeline_step_count(plan))
    return [{**base, **entry, "images_per_s": entry["images"] / entry["seconds"]}
            for entry in entries]


def measure_all(plan: Plan, train, test, defaults: dict[str, Any], memory: PeakMemory,
                errors: list[str], save: Callable[[list], None]) -> list[dict[str, Any]]:
    """Every setting in turn, saved after each; one that fails is recorded, the rest run.

    Order (plan.planned_settings): fast, the settings that compile (CUDA graphs
    first), classic, then the other switches: the targets depend on the first four,
    and a run cut short by a time limit loses the last; bench.md names what it cut.
    """
    import torch

    from .measure import fast_switches, free_memory, measure_switches
    from .plan import planned_settings, setting_label

    fast = fast_switches(plan.device, plan.compile)
    benchmark = torch.backends.cudnn.benchmark
    on_device = None
    records = []
    for switches in planned_settings(fast, plan.device, plan.fast_only):
        label = setting_label(switches, fast)
        try:
            if switches is None:
                on_device = None  # the classic peak should not count the device copy
                free_memory(plan.device)
                records += _measure_classic(plan, train, test, defaults, memory)
            else:
                on_device = on_device or (train.to(plan.device), test.to(plan.device))
                for record in measure_switches(plan, switches, fast, *on_device, defaults,
                                               memory):
                    records.append(record)
                    save(records)  # a compiling setting cut short keeps its first sizes
        except Exception as error:  # noqa: BLE001 - one broken setting must not lose the rest
            errors.append(f"{label}: {type(error).__name__}: {error}")
            log(f"{label}: FAILED: {type(error).__name__}: {error}")
        finally:
            torch.backends.cudnn.benchmark = benchmark
            if switches is not None and switches.compile:
                torch._dynamo.reset()  # drop compiled graphs: a fresh cache per setting
            free_memory(plan.device)
        save(records)
    return records


def run(plan: Plan, command: str) -> dict[str, Any]:
    """Every measurement of one bench; returns what bench.json holds.

    bench.json and bench.md are rewritten after each setting (marked incomplete),
    so a run stopped by a time limit still leaves what it measured.
    """
    from ..train import Runtime, environment
    from .measure import fast_switches, load_data, project_defaults
    from .plan import planned_settings, setting_label
    from .results import write_results

    header = {"command": command, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "mode": plan.mode, "load_before": list(os.getloadavg())}
    train, test, header["data"] = load_data(plan)
    defaults = project_defaults()
    memory = PeakMemory(plan.device)
    fast = fast_switches(plan.device, plan.compile)
    runtime = Runtime(plan.device, fast.precision, fast.channels_last)
    header.update(
        environment=environment(runtime, header["data"]["checksums"] or "synthetic"),
        settings={"batch_sizes": plan.batch_sizes, "augs": plan.augs, "warmup": plan.warmup,
                  "steps": plan.steps, "repeats": plan.repeats,
                  "pipeline_steps": pipeline_step_count(plan),
                  "switch_aug": switch_aug(plan), "eval_batch_size": plan.eval_batch_size,
                  "eval_batches": plan.eval_batches, "workers": plan.workers,
                  "epoch_images": EPOCH_IMAGES, "test_images": TEST_IMAGES,
                  "alpha": {aug: defaults["alpha"][aug] for aug in plan.augs},
                  "optim": defaults["optim"]},
        fast=asdict(fast), memory_source=memory.source, note=plan.note,
        planned_settings=[setting_label(switches, fast)
                          for switches in planned_settings(fast, plan.device, plan.fast_only)])
    log(f"{plan.device} ({plan.mode}); data: {header['data']['source']}, "
        f"{header['data']['train_images']:,} train images; fast setting: {asdict(fast)}")
    errors: list[str] = []

    def save(records: list[dict[str, Any]]) -> None:
        write_results(plan.out, assemble(header, records, errors, plan, complete=False))

    records = measure_all(plan, train, test, defaults, memory, errors, save)
    return assemble(header, records, errors, plan, complete=True)


def assemble(header: dict[str, Any], records: list[dict[str, Any]], errors: list[str],
             plan: Plan, complete: bool) -> dict[str, Any]:
    """What bench.json holds: the header, every measurement, the ratios, the errors."""
    from .results import add_epoch_seconds, setting_coverage, summarise

    add_epoch_seconds(records)
    coverage = setting_coverage(header["planned_settings"], records, plan)
    load = {"before": header["load_before"], "after": list(os.getloadavg()),
            "cpu_count": os.cpu_count()}
    return {**{k: v for k, v in header.items() if k != "load_before"}, "complete": complete,
            "load_average": load, "measurements": records, "summary": summarise(records, plan),
            "coverage": coverage, "errors": errors}


def main(argv: list[str]) -> int:
    """`mixup-bench bench [options]`: measure, print the tables, write bench.json and bench.md."""
    import shlex

    from .results import write_results

    try:
        plan = resolve_plan(parse_args(argv))
        command = " ".join(["mixup-bench", "bench", *map(shlex.quote, argv)])
        if plan.profile:
            from .profile import render, run_profile

            print(render(run_profile(plan, command)))  # it writes the files per batch size
            log(f"wrote {plan.out / 'profile.md'} and {plan.out / 'profile.json'}")
            return 0
        results = run(plan, command)
    except BenchError as error:
        print(f"mixup-bench: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    print(write_results(plan.out, results))
    log(f"wrote {plan.out / 'bench.json'} and {plan.out / 'bench.md'}")
    return 1 if results["errors"] else 0
