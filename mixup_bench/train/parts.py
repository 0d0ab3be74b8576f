"""What a run trains with: model, optimizer, compiled network, grad scaler and scheduler.

`build_trainee` is the one place these are set up; the trainer and `mixup-bench
bench` both call it, so the bench measures exactly what a run trains.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import torch

from ..models import build_model
from .runtime import Runtime

log = logging.getLogger(__name__)

# trainer.optimizer_step -> the SGD flags. load_state_dict restores the saved ones, so a
# resumed run sets the built ones again (resuming with another step is allowed: same
# arithmetic).
OPTIMIZER_KERNELS = {"foreach": {"foreach": True, "fused": False},
                     "fused": {"foreach": False, "fused": True},
                     "loop": {"foreach": False, "fused": False}}
# torch.compile's `dynamic`, for the trainer and the bench alike. Training batches have one
# shape (the loader drops the last partial batch), so static graphs fit; evaluation's batch
# compiles once more, as it does in the bench.
COMPILE_DYNAMIC = False
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


def build_optimizer(model: torch.nn.Module, optim: Mapping[str, Any],
                    step: str = "foreach") -> torch.optim.Optimizer:
    """SGD with momentum from the `optim` settings; `step` picks its kernels.

    foreach: one launch per operation over all parameters; fused: one kernel
    for the whole update; loop: a Python loop over parameters (the reference).
    """
    return torch.optim.SGD(model.parameters(), lr=optim["lr"], momentum=optim["momentum"],
                           weight_decay=optim["weight_decay"], nesterov=optim["nesterov"],
                           **OPTIMIZER_KERNELS[step])


def sgd_kernels(step: str, precision: str, device: torch.device) -> str:
    """The SGD kernels a run steps with: trainer.optimizer_step, but fused under fp16 on CUDA.

    fp16 trains with a GradScaler. With foreach or loop SGD, GradScaler.step reads
    found_inf with .item() before each step (a host synchronisation per step); fused
    SGD takes the scale and found_inf as tensors and skips the step on the device.
    """
    return "fused" if precision == "fp16" and device.type == "cuda" else step


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """load_state_dict, keeping the kernels the optimizer was built with (build_trainee:
    trainer.optimizer_step, or fused under fp16 on CUDA), which load_state_dict alone
    would replace with the saved ones."""
    built = [{key: group[key] for key in ("foreach", "fused")} for group in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kernels in zip(optimizer.param_groups, built, strict=True):
        group.update(kernels)


def build_scheduler(optimizer: torch.optim.Optimizer, sched: Mapping[str, Any], epochs: int):
    """The learning-rate schedule, stepped once per epoch."""
    if sched["name"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=list(sched["milestones"]),
                                                gamma=sched["gamma"])


def compile_network(model: torch.nn.Module, enabled: bool, mode: str = "default"):
    """torch.compile(model) when enabled, else the model itself.

    Checkpoints hold the plain module's weights; the compiled wrapper only runs
    them. `mode` is torch.compile's: reduce-overhead and max-autotune also
    capture CUDA graphs (see Runtime.cuda_graphs).
    """
    if not enabled:
        return model
    return torch.compile(model, mode=None if mode == "default" else mode,
                         dynamic=COMPILE_DYNAMIC)


def uses_cuda_graphs(device: torch.device, enabled: bool, mode: str) -> bool:
    """Whether torch.compile in `mode` replays CUDA graphs on this device."""
    return enabled and device.type == "cuda" and mode in CUDA_GRAPH_MODES


class Trainee(NamedTuple):
    """A network ready to train, with what steps it."""

    runtime: Runtime  # cuda_graphs set from the compile mode
    model: torch.nn.Module  # the plain module: checkpoints hold its weights
    network: torch.nn.Module  # the model, or its compiled wrapper
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


def build_trainee(runtime: Runtime, model_name: str, num_classes: int, dropout: float,
                  optim: Mapping[str, Any], *, optimizer_step: str = "foreach",
                  compile: bool = False, compile_mode: str = "default",
                  cudnn_benchmark: bool = True, zero_init_last: bool = False) -> Trainee:
    """The model on the device in the runtime's layout, SGD, the compiled network and scaler.

    The caller seeds torch first: the weights come from its global generator.
    zero_init_last: model.zero_init_last (see models.build_model). SGD uses
    `optimizer_step`'s kernels, fused under fp16 on CUDA (see sgd_kernels).
    """
    device = runtime.device
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = cudnn_benchmark
    model = build_model(model_name, num_classes, dropout, zero_init_last=zero_init_last)
    model = model.to(device)
    if runtime.channels_last:
        model = model.to(memory_format=torch.channels_last)
    kernels = sgd_kernels(optimizer_step, runtime.precision, device)
    if kernels != optimizer_step:  # said in the run's log, since the config keeps the asked
        log.info("trainer.optimizer_step=%s: stepping with fused SGD instead (fp16 on CUDA: "
                 "the grad scaler then reads nothing back)", optimizer_step)
    optimizer = build_optimizer(model, optim, kernels)
    network = compile_network(model, compile, compile_mode)
    runtime = runtime.with_cuda_graphs(uses_cuda_graphs(device, compile, compile_mode))
    scaler = torch.amp.GradScaler(device.type, enabled=runtime.precision == "fp16")
    return Trainee(runtime, model, network, optimizer, scaler)
