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
  (cudnn.benchmark, fused SGD, channels_last, precision, torch.compile and its
  CUDA-graph mode), with the warm-up time (compilation) apart;
- the classic pipeline (classic.py: DataLoader workers, PIL transforms, fp32);
- the data pipeline alone (crop, flip, normalise, mix; no model), both ways;
- the issue's targets against the best setting measured.

Timed regions are closed by torch.cuda.synchronize on CUDA and timed with
perf_counter. Peaks are reset after each setting's warm-up steps, so they
describe steady training, not compilation or cuDNN's algorithm search.
Results go to OUT/bench.json and OUT/bench.md.

This module holds the arguments, the plan, the run and `main`; bench_measure
does the measuring and bench_report the ratios and the two files.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .bench_measure import PeakMemory

EPOCH_IMAGES = 50_000  # one CIFAR-10 training epoch
TEST_IMAGES = 10_000  # the CIFAR-10 test set
AUGS = ("none", "mixup", "cutmix")
DRY_RUN_BATCH_SIZES = (4, 8)
# (train, test) sizes of the random images used when no CIFAR-10 folder is given.
SYNTHETIC_SIZES = {"full": (EPOCH_IMAGES, TEST_IMAGES), "quick": (10_000, 2_000),
                   "dry_run": (64, 32)}
# (warmup, steps, eval batch size, eval batches) per device and mode.
STEP_DEFAULTS = {("cuda", "full"): (10, 50, 1000, 10), ("cuda", "quick"): (5, 20, 1000, 2),
                 ("cpu", "full"): (1, 5, 1000, 2), ("cpu", "quick"): (1, 2, 250, 1),
                 ("cuda", "dry_run"): (1, 1, 4, 1), ("cpu", "dry_run"): (1, 1, 4, 1)}
PIPELINE_MIN_STEPS = 20  # the data pipeline alone is cheap: time more batches


# --- arguments and plan -------------------------------------------------------------


class BenchError(Exception):
    """Bad arguments or an impossible request: one line, exit status 2."""


@dataclass(frozen=True)
class Switches:
    """One setting of the speed switches."""

    precision: str  # fp32, bf16 or fp16 (autocast)
    channels_last: bool
    compile: bool
    cudnn_benchmark: bool
    optimizer_step: str = "foreach"  # SGD kernels: foreach, fused or loop
    compile_mode: str = "default"  # torch.compile's mode, when compile is on

    def label(self, fast: Switches) -> str:
        """'fast', or how this setting differs from the fast one."""
        changes = [self.precision] if self.precision != fast.precision else []
        for name in ("channels_last", "compile", "cudnn_benchmark"):
            if getattr(self, name) != getattr(fast, name):
                on = "on" if getattr(self, name) else "off"
                changes.append(f"{name.replace('cudnn_', 'cudnn.')} {on}")
        if self.compile and self.compile_mode != "default":
            changes = [c for c in changes if c != "compile on"]
            if (fast.compile, fast.compile_mode) != (True, self.compile_mode):
                changes.append(f"compile {self.compile_mode}")
        if self.optimizer_step != fast.optimizer_step:
            changes.append(f"optimizer {self.optimizer_step}")
        return ", ".join(changes) or "fast"


@dataclass
class Plan:
    """What one bench measures, every default filled in."""

    device: Any  # torch.device
    batch_sizes: list[int]
    augs: list[str]
    warmup: int
    steps: int
    eval_batch_size: int
    eval_batches: int
    workers: int
    compile: bool
    mode: str  # full, quick or dry_run
    data_root: Path | None
    out: Path
    note: str | None
    profile: bool = False  # profile steps instead of timing them (bench_profile)
    repeats: int = 1  # interleaved rounds of the fast setting's training measurements


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        raise BenchError(message)


def _positive_list(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers, e.g. 128,512")
    return values


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(prog="mixup-bench bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], help="default: cuda if available")
    parser.add_argument("--out", type=Path, help="default: results/perf/<device>")
    parser.add_argument("--data-root", type=Path,
                        help="folder holding cifar-10-batches-py/ (default: $MIXUP_BENCH_DATA "
                             "or ./data when they hold it, else random images)")
    parser.add_argument("--batch-sizes", type=_positive_list, help="default: 128,512")
    parser.add_argument("--augs", help=f"default: {','.join(AUGS)}")
    parser.add_argument("--steps", type=int, help="timed steps per setting")
    parser.add_argument("--warmup", type=int, help="untimed steps before each setting")
    parser.add_argument("--eval-batch-size", type=int)
    parser.add_argument("--eval-batches", type=int, help="timed evaluation batches")
    parser.add_argument("--workers", type=int, help="classic DataLoader workers "
                        "(default: min(8, CPU count))")
    parser.add_argument("--compile", action=argparse.BooleanOptionalAction,
                        help="torch.compile in the fast setting (default: as the trainer, off; "
                             "on CUDA the variants measure it either way)")
    parser.add_argument("--profile", action="store_true",
                        help="instead of the timings, profile training steps of the fast "
                             "setting at each batch size (torch.profiler) into OUT/profile.md")
    parser.add_argument("--repeats", type=int, help="interleaved rounds of the fast setting, "
                        "the median counts (default: 3 on CUDA, 1 on a CPU or with --quick)")
    parser.add_argument("--quick", action="store_true", help="few steps per setting")
    parser.add_argument("--dry-run", action="store_true",
                        help="every code path, one step each, tiny batches")
    parser.add_argument("--note", help="a line for bench.md (e.g. what else ran meanwhile)")
    return parser.parse_args(argv)


def resolve_plan(args: argparse.Namespace) -> Plan:
    """Fill in the defaults that depend on the device and the mode."""
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise BenchError("--device cuda: no CUDA device is available here; use --device cpu")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    mode = "dry_run" if args.dry_run else "quick" if args.quick else "full"
    warmup, steps, eval_batch_size, eval_batches = STEP_DEFAULTS[(device.type, mode)]
    augs = (args.augs or ",".join(AUGS)).split(",")
    unknown = sorted(set(augs) - set(AUGS))
    if unknown:
        raise BenchError(f"--augs: {','.join(unknown)} unknown; expected some of {','.join(AUGS)}")
    for name in ("steps", "eval_batch_size", "eval_batches", "repeats"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise BenchError(f"--{name.replace('_', '-')}={getattr(args, name)}: expected >= 1")
    for name in ("warmup", "workers"):
        if getattr(args, name) is not None and getattr(args, name) < 0:
            raise BenchError(f"--{name}={getattr(args, name)}: expected >= 0")
    default_sizes = list(DRY_RUN_BATCH_SIZES) if mode == "dry_run" else [128, 512]

    def pick(value, default):
        return default if value is None else value

    return Plan(device=device, batch_sizes=args.batch_sizes or default_sizes, augs=augs,
                warmup=pick(args.warmup, warmup), steps=pick(args.steps, steps),
                eval_batch_size=pick(args.eval_batch_size, eval_batch_size),
                eval_batches=pick(args.eval_batches, eval_batches),
                workers=pick(args.workers, min(8, os.cpu_count() or 1)),
                compile=pick(args.compile, False), mode=mode, profile=args.profile,
                repeats=pick(args.repeats, 3 if (device.type, mode) == ("cuda", "full") else 1),
                data_root=args.data_root, out=args.out or Path("results/perf") / device.type,
                note=args.note)


def pipeline_steps(plan: Plan) -> int:
    return plan.steps if plan.mode == "dry_run" else max(plan.steps, PIPELINE_MIN_STEPS)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- the whole bench -----------------------------------------------------------------


def _measure_classic(plan: Plan, train, test, defaults: dict[str, Any],
                     memory: PeakMemory) -> list[dict[str, Any]]:
    from . import classic
    from .bench_measure import timed

    base = {"pipeline": "classic", "config": "classic", "switches": None}
    entries = classic.measure(plan, train, test, defaults, partial(timed, plan.device, memory),
                              log, pipeline_steps(plan))
    return [{**base, **entry, "images_per_s": entry["images"] / entry["seconds"]}
            for entry in entries]


def measure_all(plan: Plan, train, test, defaults: dict[str, Any], memory: PeakMemory,
                errors: list[str], save: Callable[[list], None]) -> list[dict[str, Any]]:
    """Every setting in turn, saved after each; one that fails is recorded, the rest run.

    Order: fast, classic, then the variants cheapest first, so that a run cut
    short by a time limit loses the least telling settings.
    """
    import torch

    from .bench_measure import fast_switches, free_memory, measure_switches, variants

    fast = fast_switches(plan.device, plan.compile)
    benchmark = torch.backends.cudnn.benchmark
    on_device = None
    records = []
    for switches in [fast, None, *variants(fast, plan.device)]:
        label = "classic" if switches is None else switches.label(fast)
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
    from .bench_measure import PeakMemory, fast_switches, load_data, project_defaults, switch_aug
    from .bench_report import write_results
    from .runtime import Runtime, environment

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
                  "pipeline_steps": pipeline_steps(plan),
                  "switch_aug": switch_aug(plan), "eval_batch_size": plan.eval_batch_size,
                  "eval_batches": plan.eval_batches, "workers": plan.workers,
                  "epoch_images": EPOCH_IMAGES, "test_images": TEST_IMAGES,
                  "alpha": {aug: defaults["alpha"][aug] for aug in plan.augs},
                  "optim": defaults["optim"]},
        fast=asdict(fast), memory_source=memory.source, note=plan.note)
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
    from .bench_report import add_epoch_seconds, summarise

    add_epoch_seconds(records)
    load = {"before": header["load_before"], "after": list(os.getloadavg()),
            "cpu_count": os.cpu_count()}
    return {**{k: v for k, v in header.items() if k != "load_before"}, "complete": complete,
            "load_average": load, "measurements": records, "summary": summarise(records, plan),
            "errors": errors}


def main(argv: list[str]) -> int:
    """`mixup-bench bench [options]`: measure, print the tables, write bench.json and bench.md."""
    import shlex

    from .bench_report import write_results

    try:
        plan = resolve_plan(parse_args(argv))
        command = " ".join(["mixup-bench", "bench", *map(shlex.quote, argv)])
        if plan.profile:
            from .bench_profile import render, run_profile

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
