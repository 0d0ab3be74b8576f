"""The measuring half of `mixup-bench bench`: data, project defaults, timers, memory peaks,
and the fast pipeline (the trainer's own pieces) under each setting of the speed switches."""

from __future__ import annotations

import gc
import itertools
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Any

from .plan import (
    SYNTHETIC_SIZES,
    BenchError,
    Plan,
    Switches,
    bench_augs,
    log,
    pipeline_step_count,
    switch_aug,
)
from .syncs import SYNC_STEPS, count_syncs

# --- data, defaults, timing and memory ----------------------------------------------


def load_data(plan: Plan):
    """(train, test, description): CIFAR-10 when a folder holds it, else random uint8 images."""
    import torch

    from ..data import CIFAR10, Split, load_cifar

    root = plan.data_root
    if root is None:
        candidate = Path(os.environ.get("MIXUP_BENCH_DATA", "data"))
        root = candidate if (candidate / CIFAR10.folder).is_dir() else None
    elif not (root / CIFAR10.folder).is_dir():
        raise BenchError(f"--data-root={root}: no {CIFAR10.folder}/ there; omit --data-root "
                         "to measure on random images")
    train_count, test_count = SYNTHETIC_SIZES[plan.mode]
    if root is not None:
        dataset = load_cifar(root, CIFAR10, download=False, verify=False, fraction=1.0,
                             subset_seed=0)
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

    from .. import conf

    folder = Path(conf.__file__).parent
    shared = yaml.safe_load((folder / "aug_options" / "default.yaml").read_text())
    augs = {name: yaml.safe_load((folder / "aug" / f"{name}.yaml").read_text())
            for name in bench_augs()}
    return {"alpha": {name: entry.get("alpha") for name, entry in augs.items()},
            "aug_options": {name: {**shared, **{key: value for key, value in entry["aug"].items()
                                                if key != "name"}}
                            for name, entry in augs.items()},
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
    """Run warmup, then time work; the memory peak covers work only.

    warmup_seconds is kept too: for a compiled setting it holds the compilation.
    """
    start = time.perf_counter()
    warmup()
    synchronize(device)
    warmup_seconds = time.perf_counter() - start
    memory.reset()
    start = time.perf_counter()
    work()
    synchronize(device)
    return {"seconds": time.perf_counter() - start, "warmup_seconds": warmup_seconds,
            **memory.read()}


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
    """The trainer's defaults on this device (conf/trainer/default.yaml: precision and
    channels_last `auto`, foreach SGD, cudnn.benchmark on CUDA), compiled if asked."""
    from ..train import resolve_runtime

    runtime = resolve_runtime(str(device), "auto", "auto")
    return Switches(runtime.precision, device.type == "cuda" or runtime.channels_last,
                    compile_model, device.type == "cuda")


def _record(base: dict[str, Any], measure: str, batch_size: int | None, aug: str | None,
            warmup: int, steps: int, images: int, result: dict[str, float]) -> dict[str, Any]:
    return {**base, "measure": measure, "batch_size": batch_size, "aug": aug, "warmup": warmup,
            "steps": steps, "images": images, **result,
            "images_per_s": images / max(result["seconds"], 1e-9)}


def _train_steps(network, loader, mixer, mix_generator, optimizer, scaler, runtime,
                 steps: int, section=None) -> None:
    from ..train import Diverged, train_one_epoch

    try:
        train_one_epoch(network, StepLoader(loader, steps), mixer, mix_generator, optimizer,
                        scaler, runtime, section=section)
    except Diverged:  # random labels at lr 0.1 may blow up; the timing still stands
        pass


def _run_pipeline(loader, mixer, mix_generator, steps: int) -> None:
    for images, labels in StepLoader(loader, steps):
        mixer(images, labels, mix_generator)


def _cudagraph_skips() -> int:
    """How often torch.compile has fallen back from CUDA graphs so far in this process (e.g.
    for mutated inputs): a CUDA-graph setting with skips measured plain compiled code."""
    try:
        from torch._dynamo.utils import counters
    except ImportError:  # pragma: no cover - private API; absent means unknown, not zero
        return 0
    return int(counters["inductor"].get("cudagraph_skips", 0))


def build_trainee(plan: Plan, switches: Switches, defaults: dict[str, Any]):
    """ResNet-18 set up as `switches` say, through the trainer's own build_trainee."""
    import torch

    from ..train import Runtime
    from ..train import build_trainee as build

    torch.manual_seed(0)
    runtime = Runtime(plan.device, switches.precision, switches.channels_last)
    return build(runtime, "resnet18", 10, 0.0, defaults["optim"],
                 optimizer_step=switches.optimizer_step, compile=switches.compile,
                 compile_mode=switches.compile_mode, cudnn_benchmark=switches.cudnn_benchmark)


def training_steps(trainee, train, batch_size: int, aug: str,
                   defaults: dict[str, Any]) -> tuple[Any, Any, Callable]:
    """(loader, mixer, steps): steps(n) trains n steps of batch_size with aug;
    steps(n, section=record_function) marks each phase for a profiler."""
    import torch

    from ..data import CIFAR10_MEAN, CIFAR10_STD, DeviceLoader

    device = trainee.runtime.device
    loader = DeviceLoader(train, batch_size, train=True, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                          generator=torch.Generator(device).manual_seed(0),
                          channels_last=trainee.runtime.channels_last)
    mixer = trainer_mixer(aug, defaults, loader, trainee)
    steps = partial(_train_steps, trainee.network, loader, mixer,
                    torch.Generator().manual_seed(1), trainee.optimizer, trainee.scaler,
                    trainee.runtime)
    return loader, mixer, steps


def build_mixer_for(aug: str, defaults: dict[str, Any]):
    from ..mixing import build_mixer

    return build_mixer(aug, 10, defaults["alpha"][aug], **defaults["aug_options"][aug])


def trainer_mixer(aug: str, defaults: dict[str, Any], loader, trainee=None):
    """A mixer as the trainer sets it up: bound to the loader, inside an epoch, so that it
    draws an epoch's steps at once (StepLoader's steps past an epoch draw the next), and
    given the trainee's network (the model-guided mixers' extra passes: in the pipeline
    measure too, since they are the mixing's cost)."""
    from ..mixing import ModelGuide

    mixer = build_mixer_for(aug, defaults)
    mixer.bind(loader)
    mixer.set_epoch(1, 1)
    if trainee is not None:
        mixer.use_model(ModelGuide(trainee.network, trainee.runtime.autocast))
    return mixer


def time_epoch_draws(loader, aug: str, defaults: dict[str, Any], device) -> float | None:
    """Seconds the trainer's first step of an epoch spends drawing the epoch's mixing draws
    (len(loader) steps, on the CPU) and copying them to the device; timed steps use draws
    made during warm-up, so this per-epoch cost is reported apart. None: drawn per step."""
    import torch

    mixer = trainer_mixer(aug, defaults, loader)
    if not getattr(mixer, "epoch_draws", False):
        return None
    images, _ = next(iter(loader))
    synchronize(device)
    start = time.perf_counter()
    mixer.step_draws(images, torch.Generator().manual_seed(2))
    synchronize(device)
    return time.perf_counter() - start


def measure_switches(plan: Plan, switches: Switches, fast: Switches, train, test,
                     defaults: dict[str, Any], memory: PeakMemory) -> Iterator[dict[str, Any]]:
    """Train (and, for the fast setting, the pipeline alone) at each batch size and aug,
    then evaluate; yields each record as it is measured. Variants train with `switch_aug`
    only, and compiled variants skip the evaluation (its own compilation)."""
    import torch

    from ..data import CIFAR10_MEAN, CIFAR10_STD, DeviceLoader, Split
    from ..train import evaluate

    label = switches.label(fast)
    augs = plan.augs if label == "fast" else [switch_aug(plan)]
    rounds = plan.repeats if label == "fast" else 1
    trainee = build_trainee(plan, switches, defaults)
    base = {"pipeline": "fast", "config": label, "switches": asdict(switches)}
    for batch_size in plan.batch_sizes:
        # The augs of one batch size in interleaved rounds, so that a drift of the clock or
        # of the machine's load spreads over all of them; the median round counts.
        built = {aug: training_steps(trainee, train, batch_size, aug, defaults) for aug in augs}
        measured: dict[str, list[dict[str, Any]]] = {aug: [] for aug in augs}
        for _ in range(rounds):
            for aug, (_, _, steps) in built.items():
                skips = _cudagraph_skips()
                measured[aug].append(timed(plan.device, memory, partial(steps, plan.warmup),
                                           partial(steps, plan.steps)))
                measured[aug][-1]["cudagraph_skips"] = _cudagraph_skips() - skips
        if plan.device.type == "cuda":  # every setting: fp16's grad scaler, CUDA graphs, ...
            for aug, (_, _, steps) in built.items():
                result = count_syncs(steps, SYNC_STEPS)
                log(f"{label}: batch {batch_size} {aug}: {result['syncs_per_step']:g} host "
                    f"syncs per training step ({result['syncs_by_phase']})")
                yield {**base, "measure": "syncs", "batch_size": batch_size, "aug": aug,
                       **result}
        for aug, (loader, _, _) in built.items():
            rounds_measured = measured[aug]
            ordered = sorted(rounds_measured, key=lambda result: result["seconds"])
            # The median round's time and memory; the warm-up that counts is the first
            # round's (cuDNN's search, compilation), and CUDA-graph fallbacks of any round.
            result = {**ordered[len(ordered) // 2],
                      "warmup_seconds": rounds_measured[0]["warmup_seconds"],
                      "cudagraph_skips": sum(r["cudagraph_skips"] for r in rounds_measured),
                      "round_seconds": [r["seconds"] for r in rounds_measured]}
            record = _record(base, "train", batch_size, aug, plan.warmup, plan.steps,
                             plan.steps * loader.batch_size, result)
            log(f"{label}: train batch {batch_size} {aug}: {record['images_per_s']:,.1f} img/s"
                + (f" (median of {rounds})" if rounds > 1 else ""))
            yield record
            if label == "fast":
                steps = partial(_run_pipeline, loader,
                                trainer_mixer(aug, defaults, loader, trainee),
                                torch.Generator().manual_seed(1))
                count = pipeline_step_count(plan)
                result = timed(plan.device, memory, partial(steps, plan.warmup),
                               partial(steps, count))
                yield {**_record(base, "pipeline", batch_size, aug, plan.warmup, count,
                                 count * loader.batch_size, result),
                       "epoch_steps": len(loader),
                       "epoch_draw_seconds": time_epoch_draws(loader, aug, defaults,
                                                              plan.device)}
    if switches.compile and label != "fast":
        return

    def test_loader(count: int) -> DeviceLoader:
        return DeviceLoader(Split(test.images[:count], test.labels[:count]),
                            plan.eval_batch_size, train=False, mean=CIFAR10_MEAN,
                            std=CIFAR10_STD, channels_last=switches.channels_last)

    count = min(len(test), plan.eval_batch_size * plan.eval_batches)
    network, runtime = trainee.network, trainee.runtime
    result = timed(plan.device, memory,
                   partial(evaluate, network, test_loader(min(plan.eval_batch_size, count)),
                           runtime), partial(evaluate, network, test_loader(count), runtime))
    batches = -(-count // plan.eval_batch_size)
    yield _record(base, "eval", plan.eval_batch_size, None, 1, batches, count, result)
