"""A mixer's random draws: made on the CPU, copied to the training device once per epoch.

Mixers draw lambdas, partners and boxes from a CPU generator, so a run's
mixing is the same on every device. Copying each step's draws to a GPU with
blocking .to(device) calls would hold the host at every step; instead the
trainer's mixers draw a whole epoch's steps at its first step (the same calls
in the same order as step by step, so the generator's stream and every value
are unchanged) and copy them with one pinned, non-blocking copy per dtype.
Each step then takes views into those device buffers: no copy, no
synchronisation.

A step's draws are a dict: CPU tensors (copied to the device) and Python
numbers (kept on the host: a per-batch lambda, a box's corners, a seed, the
lambda's mean for MixedBatch.lam); None stands for a batch left unmixed.
"""

from __future__ import annotations

from typing import Any

import torch

Draws = dict[str, Any]


def to_device(steps: list[Draws | None], device: torch.device) -> list[Draws | None]:
    """The steps' tensors on `device`: one copy per dtype, pinned and non-blocking on CUDA.

    Every tensor becomes a view into one flat buffer per dtype on the device.
    On the CPU the draws are returned as they are (no copy at all).
    """
    if device.type == "cpu":
        return steps
    groups: dict[torch.dtype, list[torch.Tensor]] = {}
    for draws in steps:
        for value in (draws or {}).values():
            if isinstance(value, torch.Tensor):
                groups.setdefault(value.dtype, []).append(value.reshape(-1))
    buffers = {}
    for dtype, tensors in groups.items():
        host = torch.cat(tensors)
        if device.type == "cuda":
            host = host.pin_memory()  # the caching host allocator keeps it until the copy ends
        buffers[dtype] = host.to(device, non_blocking=True)
    offsets = dict.fromkeys(buffers, 0)
    shipped: list[Draws | None] = []
    for draws in steps:
        if draws is None:
            shipped.append(None)
            continue
        views = {}
        for key, value in draws.items():
            if isinstance(value, torch.Tensor):
                start = offsets[value.dtype]
                offsets[value.dtype] = start + value.numel()
                views[key] = buffers[value.dtype][start:start + value.numel()].view(value.shape)
            else:
                views[key] = value
        shipped.append(views)
    return shipped


class EpochDraws:
    """The draws of consecutive steps, made at once from one generator for one batch shape."""

    def __init__(self, generator: torch.Generator, key: tuple[Any, ...],
                 steps: list[Draws | None]) -> None:
        self.generator, self.key, self.steps = generator, key, steps
        self.taken = 0

    @property
    def exhausted(self) -> bool:
        return self.taken >= len(self.steps)

    def take(self) -> Draws | None:
        draws = self.steps[self.taken]
        self.taken += 1
        return draws
