"""The trainer's speed switches compute the same step: SGD kernels, torch.compile, CUDA-graph
step marks, and the profiler sections of a training step."""

from __future__ import annotations

import pytest
import torch

from mixup_bench.data import CIFAR10_MEAN, CIFAR10_STD, DeviceLoader, Split
from mixup_bench.mixing import build_mixer
from mixup_bench.train import train_one_epoch
from mixup_bench.train.parts import (
    build_optimizer,
    compile_network,
    load_optimizer_state,
    uses_cuda_graphs,
)
from mixup_bench.train.runtime import Runtime

OPTIM = {"lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4, "nesterov": False}
CPU = Runtime(torch.device("cpu"), "fp32", False)


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 10))


def tiny_epoch(network, model, section=None) -> dict[str, float]:
    generator = torch.Generator().manual_seed(3)
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=generator)
    split = Split(images, torch.randint(0, 10, (64,), generator=generator))
    loader = DeviceLoader(split, 16, train=True, mean=CIFAR10_MEAN, std=CIFAR10_STD,
                          generator=torch.Generator().manual_seed(0))
    mixer = build_mixer("mixup", 10, 0.2)
    mixer.bind(loader)
    optimizer = build_optimizer(model, OPTIM)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    return train_one_epoch(network, loader, mixer, torch.Generator().manual_seed(1), optimizer,
                           scaler, CPU, section=section)


@pytest.mark.parametrize("step, flags", [("foreach", {"foreach": True, "fused": False}),
                                         ("fused", {"fused": True, "foreach": False}),
                                         ("loop", {"foreach": False, "fused": False})])
def test_optimizer_step_kernels_give_the_same_update(step, flags):
    reference, model = tiny_model(), tiny_model()
    optimizers = [build_optimizer(reference, OPTIM, "loop"),
                  build_optimizer(model, OPTIM, step)]
    for name, value in flags.items():
        assert optimizers[1].defaults[name] is value
    inputs = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for _ in range(3):
        for network, optimizer in zip((reference, model), optimizers, strict=True):
            optimizer.zero_grad()
            network(inputs).square().mean().backward()
            optimizer.step()
    for mine, theirs in zip(model.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)
    assert not torch.equal(next(model.parameters()), next(tiny_model().parameters()))


def test_compiled_network_trains_like_the_eager_one():
    eager_model, compiled_model = tiny_model(), tiny_model()
    eager = tiny_epoch(eager_model, eager_model)
    compiled = tiny_epoch(compile_network(compiled_model, True), compiled_model)
    assert compile_network(eager_model, False) is eager_model
    assert compiled["images"] == eager["images"] == 64
    assert compiled["train_loss"] == pytest.approx(eager["train_loss"], rel=1e-4)
    for mine, theirs in zip(compiled_model.parameters(), eager_model.parameters(), strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-5)


def test_cuda_graph_step_marks_only_with_a_graph_mode_on_cuda():
    cuda = torch.device("cuda")
    assert uses_cuda_graphs(cuda, True, "reduce-overhead")
    assert uses_cuda_graphs(cuda, True, "max-autotune")
    assert not uses_cuda_graphs(cuda, True, "default")
    assert not uses_cuda_graphs(cuda, True, "max-autotune-no-cudagraphs")
    assert not uses_cuda_graphs(cuda, False, "reduce-overhead")
    assert not uses_cuda_graphs(CPU.device, True, "reduce-overhead")


def test_each_step_runs_its_phases_in_order_inside_sections():
    names: list[str] = []

    class Section:
        def __init__(self, name: str) -> None:
            self.name = name

        def __enter__(self) -> None:
            names.append(self.name)

        def __exit__(self, *exc) -> None:
            names.append("/" + self.name)

    model = tiny_model()
    tiny_epoch(model, model, section=Section)
    step = ["batch", "/batch", "mix", "/mix", "forward", "/forward", "backward", "/backward",
            "optimizer", "/optimizer", "metrics", "/metrics"]
    # 64 images / 16; the last fetch ends the loop, then the epoch's one read-back
    assert names == step * 4 + ["batch", "/batch", "epoch end", "/epoch end"]


def test_a_resumed_optimizer_takes_the_configured_kernels_not_the_saved_ones():
    saved = build_optimizer(tiny_model(), OPTIM, "foreach")
    resumed = build_optimizer(tiny_model(), OPTIM, "fused")
    load_optimizer_state(resumed, saved.state_dict())
    assert all(group["fused"] and not group["foreach"] for group in resumed.param_groups)
    resumed.load_state_dict(saved.state_dict())  # what torch alone would leave
    assert all(group["foreach"] and not group["fused"] for group in resumed.param_groups)


def test_auto_layout_is_channels_last_on_the_cpu_too(monkeypatch):
    from mixup_bench.train import runtime

    for fast_bf16, precision in ((False, "fp32"), (True, "bf16")):
        monkeypatch.setattr(runtime, "cpu_has_fast_bf16", lambda fast=fast_bf16: fast)
        resolved = runtime.resolve_runtime("cpu", "auto", "auto")
        assert (resolved.precision, resolved.channels_last) == (precision, True)
    assert runtime.resolve_runtime("cpu", "fp32", False).channels_last is False
