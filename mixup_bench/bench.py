"""`mixup-bench bench`: what the device pipeline's speed switches buy, and what mixing costs.

The trainer keeps CIFAR-10 on the device, crops, flips and mixes whole
batches there, and can use autocast, channels_last and torch.compile. This
command measures, with the project's own pieces (DeviceLoader, build_mixer,
build_model, train_one_epoch, evaluate) and for aug none / mixup / cutmix:

- images/s, seconds per 50,000-image epoch plus evaluation of 10,000 test
  images, and peak memory, at each batch size ("fast": every switch on);
- the fast configuration against each switch turned the other way, one at a
  time (precision, channels_last, torch.compile, cudnn.benchmark);
- the classic pipeline (classic.py: DataLoader workers, PIL transforms, fp32);
- the data pipeline alone (crop, flip, normalise, mix; no model), both ways.

Timed regions are closed by torch.cuda.synchronize on CUDA and timed with
perf_counter. Peaks are reset after each setting's warm-up steps, so they
describe steady training, not compilation or cuDNN's algorithm search.
Results go to OUT/bench.json and OUT/bench.md.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

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

    def label(self, fast: Switches) -> str:
        """'fast', or how this setting differs from the fast one."""
        changes = [self.precision] if self.precision != fast.precision else []
        for name in ("channels_last", "compile", "cudnn_benchmark"):
            if getattr(self, name) != getattr(fast, name):
                on = "on" if getattr(self, name) else "off"
                changes.append(f"{name.replace('cudnn_', 'cudnn.')} {on}")
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
                        help="torch.compile in the fast setting (default: on CUDA only)")
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
    for name in ("steps", "eval_batch_size", "eval_batches"):
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
                compile=pick(args.compile, device.type == "cuda"), mode=mode,
                data_root=args.data_root, out=args.out or Path("results/perf") / device.type,
                note=args.note)


def pipeline_steps(plan: Plan) -> int:
    return plan.steps if plan.mode == "dry_run" else max(plan.steps, PIPELINE_MIN_STEPS)


def log(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- data, defaults, timing and memory ----------------------------------------------


def load_data(plan: Plan):
    """(train, test, description): CIFAR-10 when a folder holds it, else random uint8 images."""
    import torch

    from .data import CIFAR10_FOLDER, Split, load_cifar10

    root = plan.data_root
    if root is None:
        candidate = Path(os.environ.get("MIXUP_BENCH_DATA", "data"))
        root = candidate if (candidate / CIFAR10_FOLDER).is_dir() else None
    elif not (root / CIFAR10_FOLDER).is_dir():
        raise BenchError(f"--data-root={root}: no {CIFAR10_FOLDER}/ there; omit --data-root "
                         "to measure on random images")
    train_count, test_count = SYNTHETIC_SIZES[plan.mode]
    if root is not None:
        dataset = load_cifar10(root, download=False, verify=False, fraction=1.0, subset_seed=0)
        train, test = dataset.train, dataset.test
        if plan.mode == "dry_run":
            train = Split(train.images[:train_count], train.labels[:train_count])
            test = Split(test.images[:test_count], test.labels[:test_count])
        info = {"source": "cifar10", "root": str(root.resolve()), "checksums": dataset.checksums}
    else:
        generator = torch.Generator().manual_seed(0)

        def random_split(count: int) -> Split:
            images = torch.randint(0, 256, (count, 3, 32, 32), dtype=torch.uint8,
                                   generator=generator)
            return Split(images, torch.randint(0, 10, (count,), generator=generator))

        train, test = random_split(train_count), random_split(test_count)
        info = {"source": "synthetic", "root": None, "checksums": None}
    info.update(train_images=len(train), test_images=len(test))
    return train, test, info


def project_defaults() -> dict[str, Any]:
    """Alphas, mixer options and SGD settings as conf/ sets them (defaults live there only)."""
    import yaml

    from . import conf

    folder = Path(conf.__file__).parent
    augs = {name: yaml.safe_load((folder / "aug" / f"{name}.yaml").read_text()) for name in AUGS}
    return {"alpha": {name: entry.get("alpha") for name, entry in augs.items()},
            "aug_options": {name: {key: value for key, value in entry["aug"].items()
                                   if key != "name"} for name, entry in augs.items()},
            "optim": yaml.safe_load((folder / "optim" / "sgd.yaml").read_text())}


class PeakMemory:
    """Peak memory over a timed region: the CUDA allocator's, or the process's RSS on the CPU."""

    def __init__(self, device) -> None:
        self.device = device
        self.start = 0
        self.resettable = device.type == "cuda" or self._reset_rss_peak()
        if device.type == "cuda":
            self.source = ("torch.cuda.max_memory_allocated: tensors on the GPU, reset after "
                           "each setting's warm-up")
        elif self.resettable:
            self.source = ("process RSS peak (VmHWM in /proc/self/status, reset after each "
                           "setting's warm-up by writing 5 to /proc/self/clear_refs); "
                           "DataLoader worker processes not included")
        else:
            self.source = ("process RSS peak from resource.getrusage (ru_maxrss): the run's "
                           "peak so far, not reset between settings")

    @staticmethod
    def _reset_rss_peak() -> bool:
        try:
            with open("/proc/self/clear_refs", "w") as handle:
                handle.write("5")
            return True
        except OSError:
            return False

    @staticmethod
    def _status_bytes(key: str) -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
        raise OSError(f"/proc/self/status has no {key}")

    def reset(self) -> None:
        import torch

        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
            self.start = torch.cuda.memory_allocated(self.device)
        elif self.resettable:
            self._reset_rss_peak()
            self.start = self._status_bytes("VmRSS")

    def read(self) -> dict[str, int]:
        import resource

        import torch

        if self.device.type == "cuda":
            peak = torch.cuda.max_memory_allocated(self.device)
        elif self.resettable:
            peak = self._status_bytes("VmHWM")
        else:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        return {"peak_memory_bytes": peak,
                "peak_memory_above_start_bytes": max(peak - self.start, 0)}


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(device, memory: PeakMemory, warmup: Callable[[], Any],
          work: Callable[[], Any]) -> dict[str, float]:
    """Run warmup, then time work; the memory peak covers work only."""
    warmup()
    synchronize(device)
    memory.reset()
    start = time.perf_counter()
    work()
    synchronize(device)
    return {"seconds": time.perf_counter() - start, **memory.read()}


def free_memory(device) -> None:
    import torch

    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()


class StepLoader:
    """The first `steps` batches of back-to-back DeviceLoader epochs.

    Lets the trainer's own train_one_epoch and evaluate run a measured number
    of steps, past the end of an epoch if need be.
    """

    def __init__(self, loader, steps: int) -> None:
        self.loader, self.steps, self.split = loader, steps, loader.split

    def __len__(self) -> int:
        return self.steps

    def __iter__(self):
        epochs = itertools.chain.from_iterable(self.loader for _ in itertools.count())
        return itertools.islice(epochs, self.steps)


# --- the fast pipeline: the trainer's own pieces ------------------------------------


def fast_switches(device, compile_model: bool) -> Switches:
    """Every switch on, with the precision the trainer's `auto` picks on this machine."""
    from .runtime import resolve_runtime

    runtime = resolve_runtime(str(device), "auto", "auto")
    return Switches(runtime.precision, device.type == "cuda" or runtime.channels_last,
                    compile_model, device.type == "cuda")


def variants(fast: Switches, device) -> list[Switches]:
    """The fast setting with one switch turned the other way, for each switch in play;
    those that need no new compilation first."""
    settings = [replace(fast, cudnn_benchmark=False)] if device.type == "cuda" else []
    if fast.compile:
        settings.append(replace(fast, compile=False))
    other_precision = "fp32" if fast.precision != "fp32" else "bf16"
    return settings + [replace(fast, channels_last=not fast.channels_last),
                       replace(fast, precision=other_precision)]


def _record(base: dict[str, Any], measure: str, batch_size: int | None, aug: str | None,
            warmup: int, steps: int, images: int, result: dict[str, float]) -> dict[str, Any]:
    return {**base, "measure": measure, "batch_size": batch_size, "aug": aug, "warmup": warmup,
            "steps": steps, "images": images, **result,
            "images_per_s": images / max(result["seconds"], 1e-9)}


def _train_steps(network, loader, mixer, mix_generator, optimizer, scaler, runtime,
                 steps: int) -> None:
    from .train import Diverged, train_one_epoch

    try:
        train_one_epoch(network, StepLoader(loader, steps), mixer, mix_generator, optimizer,
                        scaler, runtime)
    except Diverged:  # random labels at lr 0.1 may blow up; the timing still stands
        pass


def _pipeline_steps(loader, mixer, mix_generator, steps: int) -> None:
    for images, labels in StepLoader(loader, steps):
        mixer(images, labels, mix_generator)


def switch_aug(plan: Plan) -> str:
    """The aug the switch variants run with: mixup (the project's default) when asked for."""
    return "mixup" if "mixup" in plan.augs else plan.augs[0]


def measure_switches(plan: Plan, switches: Switches, fast: Switches, train, test,
                     defaults: dict[str, Any], memory: PeakMemory) -> list[dict[str, Any]]:
    """Train (and, for the fast setting, the pipeline alone) at each batch size and aug,
    then evaluate. Variants run only at the first batch size with `switch_aug`."""
    import torch

    from .data import CIFAR10_MEAN, CIFAR10_STD, DeviceLoader, Split
    from .mixing import build_mixer
    from .models import build_model
    from .runtime import Runtime
    from .train import build_optimizer, evaluate

    label = switches.label(fast)
    runtime = Runtime(plan.device, switches.precision, switches.channels_last)
    batch_sizes, augs = plan.batch_sizes, plan.augs
    if label != "fast":
        batch_sizes, augs = batch_sizes[:1], [switch_aug(plan)]
    torch.backends.cudnn.benchmark = switches.cudnn_benchmark
    torch.manual_seed(0)
    model = build_model("resnet18", 10).to(plan.device)
    if switches.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optim = SimpleNamespace(optim=SimpleNamespace(**defaults["optim"]))
    optimizer = build_optimizer(model, optim, plan.device)  # the trainer's SGD
    # Static shapes: each batch size gets its own graph, as a fixed-batch trainer would.
    network = torch.compile(model, dynamic=False) if switches.compile else model
    scaler = torch.amp.GradScaler(plan.device.type, enabled=switches.precision == "fp16")
    base = {"pipeline": "fast", "config": label, "switches": asdict(switches)}
    records = []
    for batch_size, aug in itertools.product(batch_sizes, augs):
        loader = DeviceLoader(train, batch_size, train=True, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                              generator=torch.Generator(plan.device).manual_seed(0),
                              channels_last=switches.channels_last)
        mixer = build_mixer(aug, 10, defaults["alpha"][aug], **defaults["aug_options"][aug])
        mixer.bind(loader)
        steps = partial(_train_steps, network, loader, mixer, torch.Generator().manual_seed(1),
                        optimizer, scaler, runtime)
        result = timed(plan.device, memory, partial(steps, plan.warmup),
                       partial(steps, plan.steps))
        records.append(_record(base, "train", batch_size, aug, plan.warmup, plan.steps,
                               plan.steps * loader.batch_size, result))
        log(f"{label}: train batch {batch_size} {aug}: {records[-1]['images_per_s']:,.1f} img/s")
        if label == "fast":
            steps = partial(_pipeline_steps, loader, mixer, torch.Generator().manual_seed(1))
            count = pipeline_steps(plan)
            result = timed(plan.device, memory, partial(steps, plan.warmup), partial(steps, count))
            records.append(_record(base, "pipeline", batch_size, aug, plan.warmup, count,
                                   count * loader.batch_size, result))

    def test_loader(count: int) -> DeviceLoader:
        return DeviceLoader(Split(test.images[:count], test.labels[:count]),
                            plan.eval_batch_size, train=False, mean=CIFAR10_MEAN,
                            std=CIFAR10_STD, channels_last=switches.channels_last)

    count = min(len(test), plan.eval_batch_size * plan.eval_batches)
    result = timed(plan.device, memory,
                   partial(evaluate, network, test_loader(min(plan.eval_batch_size, count)),
                           runtime), partial(evaluate, network, test_loader(count), runtime))
    batches = -(-count // plan.eval_batch_size)
    records.append(_record(base, "eval", plan.eval_batch_size, None, 1, batches, count, result))
    return records


# --- the whole bench -----------------------------------------------------------------


def _measure_classic(plan: Plan, train, test, defaults: dict[str, Any],
                     memory: PeakMemory) -> list[dict[str, Any]]:
    from . import classic

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
                records += measure_switches(plan, switches, fast, *on_device, defaults, memory)
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
                  "steps": plan.steps, "pipeline_steps": pipeline_steps(plan),
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
    add_epoch_seconds(records)
    load = {"before": header["load_before"], "after": list(os.getloadavg()),
            "cpu_count": os.cpu_count()}
    return {**{k: v for k, v in header.items() if k != "load_before"}, "complete": complete,
            "load_average": load, "measurements": records, "summary": summarise(records, plan),
            "errors": errors}


# --- ratios, bench.json and bench.md --------------------------------------------------


def _find(records: list[dict[str, Any]], **keys: Any) -> dict[str, Any] | None:
    return next((r for r in records if all(r.get(k) == v for k, v in keys.items())), None)


def add_epoch_seconds(records: list[dict[str, Any]]) -> None:
    """Seconds per 50,000-image epoch, and with evaluation of the 10,000 test images."""
    for record in records:
        if record["measure"] != "train":
            continue
        evaluation = _find(records, pipeline=record["pipeline"], config=record["config"],
                           measure="eval")
        record["train_seconds_per_epoch"] = EPOCH_IMAGES / record["images_per_s"]
        record["eval_seconds_per_test_set"] = (TEST_IMAGES / evaluation["images_per_s"]
                                               if evaluation else None)
        record["seconds_per_epoch"] = record["train_seconds_per_epoch"] + (
            record["eval_seconds_per_test_set"] or 0.0)


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    return numerator / denominator if numerator and denominator else None


def summarise(records: list[dict[str, Any]], plan: Plan) -> dict[str, list[dict[str, Any]]]:
    """The ratios bench.md shows: fast / classic, fast / each variant, mixing / none."""
    summary: dict[str, list[dict[str, Any]]] = {"training": [], "pipeline": [], "switches": [],
                                                "mixing_overhead": []}
    for batch_size, aug in itertools.product(plan.batch_sizes, plan.augs):
        for measure in ("train", "pipeline"):
            fast = _find(records, pipeline="fast", config="fast", measure=measure,
                         batch_size=batch_size, aug=aug) or {}
            classic = _find(records, pipeline="classic", measure=measure,
                            batch_size=batch_size, aug=aug) or {}
            row = {"batch_size": batch_size, "aug": aug}
            for key in ("images_per_s", "seconds_per_epoch", "peak_memory_bytes"):
                if measure == "train" or key == "images_per_s":
                    row[f"fast_{key}"], row[f"classic_{key}"] = fast.get(key), classic.get(key)
            row["fast_over_classic"] = _ratio(fast.get("images_per_s"),
                                              classic.get("images_per_s"))
            summary["training" if measure == "train" else "pipeline"].append(row)
    fast = _find(records, config="fast", measure="train", batch_size=plan.batch_sizes[0],
                 aug=switch_aug(plan)) or {}
    for record in records:
        if record["measure"] == "train" and record["batch_size"] == plan.batch_sizes[0] \
                and record["aug"] == switch_aug(plan) and record["pipeline"] == "fast":
            summary["switches"].append({
                "config": record["config"], "batch_size": record["batch_size"],
                "aug": record["aug"], "images_per_s": record["images_per_s"],
                "fast_over_this": _ratio(fast.get("images_per_s"), record["images_per_s"]),
                "seconds_per_epoch": record["seconds_per_epoch"],
                "eval_seconds_per_test_set": record["eval_seconds_per_test_set"],
                "peak_memory_bytes": record["peak_memory_bytes"]})
    for pipeline, batch_size, aug in itertools.product(("fast", "classic"), plan.batch_sizes,
                                                       [a for a in plan.augs if a != "none"]):
        keys = {"pipeline": pipeline, "measure": "train", "batch_size": batch_size}
        if pipeline == "fast":
            keys["config"] = "fast"
        plain, mixed = _find(records, aug="none", **keys), _find(records, aug=aug, **keys)
        if plain and mixed:
            summary["mixing_overhead"].append({
                "pipeline": pipeline, "batch_size": batch_size, "aug": aug,
                "time_percent": 100 * (plain["images_per_s"] / mixed["images_per_s"] - 1),
                "peak_memory_percent": 100 * (mixed["peak_memory_bytes"]
                                              / plain["peak_memory_bytes"] - 1),
                "peak_memory_above_start_percent": 100 * (
                    _ratio(mixed["peak_memory_above_start_bytes"],
                           plain["peak_memory_above_start_bytes"]) or float("nan")) - 100})
    return summary


def _format(value: Any, kind: str) -> str:
    if value is None or value != value:  # missing, or NaN
        return "-"
    if kind == "rate" and abs(value) < 100:
        return f"{value:.3g}"
    formats = {"rate": "{:,.0f}", "seconds": "{:,.1f}", "ratio": "{:.2f}x", "percent": "{:+.1f}%"}
    if kind == "bytes":
        return f"{value / 2**20:,.0f}"
    return formats[kind].format(value) if kind in formats else str(value)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str, str]]) -> str:
    """A Markdown table; columns are (key, heading, format kind)."""
    lines = ["| " + " | ".join(heading for _, heading, _ in columns) + " |",
             "|" + "|".join("---" for _ in columns) + "|"]
    lines += ["| " + " | ".join(_format(row.get(key), kind) for key, _, kind in columns) + " |"
              for row in rows]
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    """bench.md: where and how it was measured, then the four tables."""
    environment, settings, data = results["environment"], results["settings"], results["data"]
    load = results["load_average"]
    shared = load["before"][0] > 0.5 or load["after"][0] > load["cpu_count"]
    data_line = (f"CIFAR-10 from {data['root']} ({data['train_images']:,} train / "
                 f"{data['test_images']:,} test images, checksums {data['checksums']})"
                 if data["source"] == "cifar10" else
                 f"random uint8 images ({data['train_images']:,} train / {data['test_images']:,} "
                 "test; throughput does not depend on pixel values)")
    fast = results["fast"]
    precision = "fp32 (no autocast)" if fast["precision"] == "fp32" else \
        f"{fast['precision']} autocast"
    lines = [
        f"# mixup-bench bench: {environment['device_name']} ({environment['device']})", "",
        f"- date: {results['date']}; command: `{results['command']}`",
        f"- torch {environment['torch']}, torchvision {environment['torchvision']}, timm "
        f"{environment['timm']}, CUDA {environment['cuda']}, cuDNN {environment['cudnn']}, "
        f"Python {environment['python']}, {environment['cpu_threads']} CPU threads; "
        f"git {environment['git_commit'] or 'unknown'}",
        f"- data: {data_line}",
        f"- steps per setting: {settings['warmup']} warm-up + {settings['steps']} timed "
        f"(pipeline alone: {settings['pipeline_steps']}); evaluation: "
        f"{settings['eval_batches']} batch(es) of {settings['eval_batch_size']}; classic "
        f"DataLoader workers: {settings['workers']}",
        f"- fast setting: {precision}, channels_last "
        f"{'on' if fast['channels_last'] else 'off'}, torch.compile "
        f"{'on' if fast['compile'] else 'off'}, cudnn.benchmark "
        f"{'on' if fast['cudnn_benchmark'] else 'off'}; classic (classic.py): fp32, NCHW, "
        "no compile, cudnn.benchmark on CUDA and loss.item() every step as the original "
        "Mixup code; where the loader can be the bottleneck, warm-up empties the workers' "
        "prefetch queue",
        f"- memory: {results['memory_source']}",
        f"- load average (1, 5, 15 min) before {', '.join(f'{x:.2f}' for x in load['before'])},"
        f" after {', '.join(f'{x:.2f}' for x in load['after'])}, on {load['cpu_count']} CPUs"
        + ("; the machine was shared with other work during the run" if shared else ""),
    ]
    if results["note"]:
        lines.append(f"- note: {results['note']}")
    if not results["complete"]:
        lines.append("- **incomplete**: the run stopped before every setting was measured")
    if results["errors"]:
        lines += ["", "**Settings that failed:**", *[f"- {error}" for error in results["errors"]]]
    summary = results["summary"]
    memory = "peak MiB"
    lines += [
        "", "## Training: fast vs classic", "",
        "Seconds per epoch: 50,000 training images plus evaluation of 10,000 test images. "
        "The fast pipeline's peak includes the dataset it keeps on the device.", "",
        _table(summary["training"], [
            ("batch_size", "batch", ""), ("aug", "aug", ""),
            ("fast_images_per_s", "fast img/s", "rate"),
            ("classic_images_per_s", "classic img/s", "rate"),
            ("fast_over_classic", "fast/classic", "ratio"),
            ("fast_seconds_per_epoch", "fast s/epoch", "seconds"),
            ("classic_seconds_per_epoch", "classic s/epoch", "seconds"),
            ("fast_peak_memory_bytes", f"fast {memory}", "bytes"),
            ("classic_peak_memory_bytes", f"classic {memory}", "bytes")]),
        "", f"## Speed switches (batch {settings['batch_sizes'][0]}, {settings['switch_aug']}; "
            "each row turns one switch of the fast setting the other way)", "",
        _table(summary["switches"], [
            ("config", "setting", ""), ("images_per_s", "img/s", "rate"),
            ("fast_over_this", "fast/this", "ratio"),
            ("seconds_per_epoch", "s/epoch", "seconds"),
            ("eval_seconds_per_test_set", "eval s/10k", "seconds"),
            ("peak_memory_bytes", memory, "bytes")]),
        "", "## Data pipeline alone (crop, flip, normalise, mix; no model)", "",
        _table(summary["pipeline"], [
            ("batch_size", "batch", ""), ("aug", "aug", ""),
            ("fast_images_per_s", "fast img/s", "rate"),
            ("classic_images_per_s", "classic img/s", "rate"),
            ("fast_over_classic", "fast/classic", "ratio")]),
        "", "## Mixing overhead against aug none (training)", "",
        "Time: extra time per image. Memory: the peak over the timed steps, whole and above "
        "what was allocated when they began (model, optimizer state, data).", "",
        _table(summary["mixing_overhead"], [
            ("pipeline", "pipeline", ""), ("batch_size", "batch", ""), ("aug", "aug", ""),
            ("time_percent", "time", "percent"), ("peak_memory_percent", "peak memory", "percent"),
            ("peak_memory_above_start_percent", "peak above start", "percent")]),
    ]
    return "\n".join(lines) + "\n"


def write_results(out: Path, results: dict[str, Any]) -> str:
    """Write bench.json and bench.md; return the Markdown."""
    from .metrics import write_json_atomic

    markdown = render(results)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "bench.json", results)
    (out / "bench.md").write_text(markdown)
    return markdown


def main(argv: list[str]) -> int:
    """`mixup-bench bench [options]`: measure, print the tables, write bench.json and bench.md."""
    import shlex

    try:
        plan = resolve_plan(parse_args(argv))
        command = " ".join(["mixup-bench", "bench", *map(shlex.quote, argv)])
        results = run(plan, command)
    except BenchError as error:
        print(f"mixup-bench: error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    print(write_results(plan.out, results))
    log(f"wrote {plan.out / 'bench.json'} and {plan.out / 'bench.md'}")
    return 1 if results["errors"] else 0
