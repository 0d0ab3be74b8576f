"""One epoch of training and one evaluation: the inner loops of a run, and of the bench.

Metrics stay on the device until the end of the epoch: the loss check and
accuracy counters add no host synchronisation per step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch

from ..errors import ConfigError
from ..mixing import Mixer, ModelGuide, soft_target_cross_entropy
from .metrics import calibration_error, reliability_bins, reliability_table
from .runtime import Runtime
from .safety import Preempted

Section = Callable[[str], AbstractContextManager]
_NULL = nullcontext()  # reusable: entering it does nothing


class Diverged(Exception):
    """The training loss became NaN or infinite."""


def _no_section(name: str) -> nullcontext:
    return _NULL


def _batches(loader: Any, section: Section) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The loader's batches, each fetch inside section("batch") (a profiler range)."""
    iterator = iter(loader)
    while True:
        with section("batch"):
            item = next(iterator, None)
        if item is None:
            return
        yield item


def is_compiled(model: torch.nn.Module) -> bool:
    """Whether `model` is torch.compile's wrapper (OptimizedModule) rather than the module."""
    return hasattr(model, "_orig_mod")


def check_compilable(compiled: bool, mixer: Mixer) -> None:
    """Refuse a compiled network with a mixer that mixes inside it (Manifold Mixup).

    torch.compile does not see forward hooks added after its first call (Dynamo skips
    guards on module hooks): the compiled network would train on unmixed features
    against mixed targets (tests/test_cuda_path.py shows it on the CPU). The CLI asks
    before any work (hydra_app); train_one_epoch asks again for other callers.
    """
    if getattr(mixer, "mixes_inside_network", False) and compiled:
        raise ConfigError(f"aug={mixer.name} with trainer.compile=true: torch.compile ignores "
                          "the forward hook that mixes hidden features, so the network would "
                          "train on unmixed ones; set trainer.compile=false")


def train_one_epoch(model: torch.nn.Module, loader: Any, mixer: Mixer,
                    mix_generator: torch.Generator, optimizer: torch.optim.Optimizer,
                    scaler: torch.amp.GradScaler, runtime: Runtime, progress: Any = None,
                    stop: Callable[[], bool] | None = None,
                    section: Section | None = None) -> dict[str, float]:
    """One pass over the training batches; metrics stay on the device until the end.

    `stop()` is polled between steps (a Python flag, no device sync); when it
    says so the epoch ends early with Preempted. `section(name)` wraps each
    phase of the step; `mixup-bench bench --profile` passes the profiler's
    record_function, training passes a shared no-op context.
    """
    check_compilable(is_compiled(model), mixer)
    mixer.use_model(ModelGuide(model, runtime.autocast))  # model-guided mixers' extra passes
    model.train()
    section = section or _no_section
    device = runtime.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    first_bad_step = torch.full((), -1, device=device, dtype=torch.long)
    seen = 0
    for step, (images, labels) in enumerate(_batches(loader, section)):
        if stop is not None and stop():
            raise Preempted(f"stopped by a signal at step {step + 1}")
        if runtime.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with section("mix"):
            batch = mixer(images, labels, mix_generator)
        inside = batch.forward_context(model) if batch.forward_context else nullcontext()
        with section("forward"), runtime.autocast(), inside:
            logits = model(batch.images)
        with section("backward"):
            loss = soft_target_cross_entropy(logits, batch.targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
        with section("optimizer"):
            scaler.step(optimizer)
            scaler.update()
        with section("metrics"):
            loss = loss.detach()
            bad = ~torch.isfinite(loss) & (first_bad_step < 0)
            first_bad_step = torch.where(bad, step + 1, first_bad_step)
            loss_sum += loss * labels.shape[0]
            # Accuracy against the dominant label of each (mixed) target.
            correct += (logits.detach().argmax(1) == batch.targets.argmax(1)).sum()
        seen += labels.shape[0]
        if progress is not None:
            progress.update(1)
    with section("epoch end"):  # host synchronisations: once per epoch, after the loop
        bad_step = int(first_bad_step)
        if bad_step >= 0:
            raise Diverged(f"non-finite training loss at step {bad_step}")
        return {"train_loss": float(loss_sum) / max(seen, 1),
                "train_acc": float(correct) / max(seen, 1), "images": seen}


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader: Any, runtime: Runtime,
             reliability: dict[str, Any] | None = None) -> dict[str, float]:
    """Loss (NLL), top-1 accuracy and ECE on the whole test split.

    If `reliability` is a dict, it receives the reliability-diagram bins.
    """
    model.eval()
    loss_sum = torch.zeros((), device=runtime.device)
    correct = torch.zeros((), device=runtime.device)
    probabilities, labels_all = [], []
    for images, labels in loader:
        if runtime.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()
        with runtime.autocast():
            logits = model(images)
        logits = logits.float()
        loss_sum += torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
        correct += (logits.argmax(1) == labels).sum()
        probabilities.append(logits.softmax(1))
        labels_all.append(labels)
    count = len(loader.split)
    table = reliability_bins(torch.cat(probabilities), torch.cat(labels_all))
    ece = calibration_error(table)
    if reliability is not None:
        reliability.update(reliability_table(table))
    return {"test_loss": float(loss_sum) / count, "test_acc": float(correct) / count,
            "test_ece": float(ece)}
