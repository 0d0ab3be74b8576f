"""The bench's arguments and plan: what one `mixup-bench bench` measures, defaults filled in."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

EPOCH_IMAGES = 50_000  # one CIFAR-10 training epoch
TEST_IMAGES = 10_000  # the CIFAR-10 test set
AUGS = ("none", "mixup", "cutmix")  # the default; the classic pipeline knows these
# The model-guided methods: their extra passes are the cost the bench shows beside mixup.
GUIDED_AUGS = ("attentivemix", "puzzlemix")


def bench_augs() -> tuple[str, ...]:
    """Every method `aug=` takes (conf/aug/*.yaml, the trainer's own list), none first:
    --augs measures any of them in the fast pipeline, through the trainer's
    train_one_epoch (so Manifold Mixup's forward hook and the guided methods' extra
    passes count); the classic pipeline measures only AUGS."""
    from .. import conf

    names = sorted(path.stem for path in (Path(conf.__file__).parent / "aug").glob("*.yaml"))
    return ("none", *[name for name in names if name != "none"])

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


# --- which settings, in which order ---------------------------------------------------


def variants(fast: Switches, device) -> list[Switches]:
    """The fast setting with one switch turned the other way, for each switch in play:
    those that compile (CUDA only, where compilation is measured) first, CUDA graphs
    first of all (the likeliest gain; the throughput targets depend on them), then the
    rest."""
    settings = []
    if device.type == "cuda":  # CUDA graphs through torch.compile
        settings.append(replace(fast, compile=True, compile_mode="reduce-overhead"))
    if fast.compile:
        settings.append(replace(fast, compile=False))
    elif device.type == "cuda":
        settings.append(replace(fast, compile=True))
    if device.type == "cuda":
        settings.append(replace(fast, cudnn_benchmark=False))
    other_precision = "fp32" if fast.precision != "fp32" else "bf16"
    settings += [replace(fast, optimizer_step="fused"),
                 replace(fast, channels_last=not fast.channels_last),
                 replace(fast, precision=other_precision)]
    if device.type == "cuda" and fast.precision != "fp16":  # GradScaler and fused SGD
        settings.append(replace(fast, precision="fp16"))
    return settings


def compiles_differently(switches: Switches, fast: Switches) -> bool:
    """Whether a setting changes torch.compile or its mode against the fast setting."""
    return (switches.compile, switches.compile_mode if switches.compile else None) != \
        (fast.compile, fast.compile_mode if fast.compile else None)


def gco_missing() -> bool:
    """Whether PuzzleMix's graph-cut package (the optional extra) is absent."""
    import importlib.util

    return importlib.util.find_spec("gco") is None


def planned_settings(fast: Switches, device, fast_only: bool = False) -> list[Switches | None]:
    """The bench's order (None: the classic pipeline): the default setting, those that
    compile (the targets depend on them, and a time limit cuts the last settings), the
    classic pipeline (the fast/classic target), then the other switches. `fast_only`
    (--fast-only): the default setting alone, e.g. to compare every method's cost."""
    if fast_only:
        return [fast]
    settings = variants(fast, device)
    compiling = [switches for switches in settings if compiles_differently(switches, fast)]
    rest = [switches for switches in settings if switches not in compiling]
    return [fast, *compiling, None, *rest]


def setting_label(switches: Switches | None, fast: Switches) -> str:
    return "classic" if switches is None else switches.label(fast)


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
    profile: bool = False  # profile steps instead of timing them (bench.profile)
    repeats: int = 1  # interleaved rounds of the fast setting's training measurements
    fast_only: bool = False  # the trainer's default setting only (no switches, no classic)


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
    parser.add_argument("--augs", help=f"default: {','.join(AUGS)}; 'all', or any of "
                        f"{','.join(bench_augs())} (the others in the fast pipeline only)")
    parser.add_argument("--fast-only", action="store_true",
                        help="the trainer's default setting only: no speed-switch variant and "
                             "no classic pipeline (e.g. --augs all --fast-only: what each "
                             "method adds to a training step)")
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
    known = bench_augs()
    augs = list(known) if args.augs == "all" else (args.augs or ",".join(AUGS)).split(",")
    unknown = sorted(set(augs) - set(known))
    if unknown:
        raise BenchError(f"--augs: {','.join(unknown)} unknown; expected 'all' or some of "
                         f"{','.join(known)}")
    if args.compile and "manifold_mixup" in augs:
        raise BenchError("--compile with --augs manifold_mixup (or all): torch.compile ignores "
                         "the forward hook that mixes hidden features; list the methods "
                         "without it, or leave out --compile")
    if "puzzlemix" in augs and gco_missing():
        hint = "its graph cut needs gco-wrapper: pip install -e '.[puzzlemix]'"
        if args.augs != "all":
            raise BenchError(f"--augs puzzlemix: {hint}")
        augs.remove("puzzlemix")
        log(f"--augs all: puzzlemix left out ({hint})")
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
                fast_only=args.fast_only,
                data_root=args.data_root, out=args.out or Path("results/perf") / device.type,
                note=args.note)


def pipeline_step_count(plan: Plan) -> int:
    """How many batches the data pipeline alone is timed over."""
    return plan.steps if plan.mode == "dry_run" else max(plan.steps, PIPELINE_MIN_STEPS)


def switch_aug(plan: Plan) -> str:
    """The aug the switch variants run with: mixup (the project's default) when asked for."""
    return "mixup" if "mixup" in plan.augs else plan.augs[0]


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)
