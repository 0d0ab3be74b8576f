"""Batch mixing: none, Mixup and CutMix as pure functions behind a registry.

A mixer maps (images, labels, generator) to (mixed images, soft targets).
The trainer always uses the soft-target loss, so it has no branch per method
and a new mixer needs no change there. Mixers never change their inputs in
place and draw only from the torch.Generator they are given (a CPU
generator: lambdas, partners and boxes are then the same on every device).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

Box = tuple[int, int, int, int]  # (top, bottom, left, right), bottom/right exclusive


@dataclass
class MixedBatch:
    images: torch.Tensor  # (N, C, H, W), same dtype and layout as the input
    targets: torch.Tensor  # (N, num_classes) float, rows sum to 1
    lam: float  # the weight of the original images (1.0: unmixed)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels, num_classes).float()


def sample_beta(alpha: float, generator: torch.Generator, count: int | None = None) -> torch.Tensor:
    """Draw from Beta(alpha, alpha) reproducibly from `generator`.

    torch.distributions.Beta samples from the global RNG only, so we seed a
    forked copy of it from the generator instead of writing our own sampler.
    """
    seed = int(torch.randint(0, 2**62, (), generator=generator))
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        distribution = torch.distributions.Beta(torch.tensor(float(alpha)),
                                                torch.tensor(float(alpha)))
        return distribution.sample(() if count is None else (count,))


def random_partner(count: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of the batch: image i is mixed with image perm[i]."""
    return torch.randperm(count, generator=generator)


def mixup(images: torch.Tensor, targets: torch.Tensor, lam: float,
          partner: torch.Tensor) -> MixedBatch:
    """x = lam * x + (1 - lam) * x[partner]; the same for the soft targets."""
    partner = partner.to(images.device)
    mixed = images * lam + images[partner] * (1.0 - lam)
    mixed_targets = targets * lam + targets[partner] * (1.0 - lam)
    return MixedBatch(mixed, mixed_targets, float(lam))


def box_from_centre(height: int, width: int, lam: float, centre_y: int, centre_x: int) -> Box:
    """A box of (1 - lam) * H * W pixels (before clipping) centred at (centre_y, centre_x).

    The side is int(H * sqrt(1 - lam)), split as side//2 before and
    (side+1)//2 after the centre, as timm does: unclipped boxes then have
    exactly that side (the official CutMix code loses a pixel on odd sides).
    """
    ratio = (1.0 - lam) ** 0.5
    cut_height, cut_width = int(height * ratio), int(width * ratio)
    top = min(max(centre_y - cut_height // 2, 0), height)
    bottom = min(max(centre_y + (cut_height + 1) // 2, 0), height)
    left = min(max(centre_x - cut_width // 2, 0), width)
    right = min(max(centre_x + (cut_width + 1) // 2, 0), width)
    return top, bottom, left, right


def cutmix_box(height: int, width: int, lam: float, generator: torch.Generator) -> Box:
    """A box of area about (1 - lam) * H * W with a uniform centre, clipped to the image.

    Clipping makes the pasted area smaller than asked near the borders, so
    callers set lambda from the real box (see `box_lambda`).
    """
    centre_y = int(torch.randint(0, height, (), generator=generator))
    centre_x = int(torch.randint(0, width, (), generator=generator))
    return box_from_centre(height, width, lam, centre_y, centre_x)


def box_lambda(box: Box, height: int, width: int) -> float:
    """The fraction of the image NOT covered by the box."""
    top, bottom, left, right = box
    return 1.0 - (bottom - top) * (right - left) / (height * width)


def cutmix(images: torch.Tensor, targets: torch.Tensor, box: Box,
           partner: torch.Tensor) -> MixedBatch:
    """Paste box from x[partner] into a copy of x; lambda is the unpasted fraction."""
    height, width = images.shape[-2:]
    top, bottom, left, right = box
    partner = partner.to(images.device)
    mixed = images.clone()
    # images[partner] is gathered (a copy) before the write, so sources stay intact.
    mixed[..., top:bottom, left:right] = images[partner][..., top:bottom, left:right]
    lam = box_lambda(box, height, width)
    mixed_targets = targets * lam + targets[partner] * (1.0 - lam)
    return MixedBatch(mixed, mixed_targets, lam)


class Mixer:
    """Base class: turns a labelled batch into a mixed batch with soft targets."""

    name = "base"

    def __init__(self, num_classes: int, alpha: float | None = None, **options: Any) -> None:
        if options:
            raise ValueError(f"aug={self.name}: unknown option(s) {', '.join(sorted(options))}")
        self.num_classes = num_classes
        self.alpha = alpha
        self.epoch, self.epochs = 1, 1
        self.loader = None

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before each epoch (1-based), for schedules over training."""
        self.epoch, self.epochs = epoch, epochs

    def bind(self, loader: Any) -> None:
        """Called once with the training DeviceLoader, for mixers that draw partners from it."""
        self.loader = loader

    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator) -> MixedBatch:
        raise NotImplementedError


_MIXERS: dict[str, type[Mixer]] = {}


def register_mixer(name: str) -> Callable[[type[Mixer]], type[Mixer]]:
    """Class decorator: make a mixer available as aug=<name>."""

    def add(cls: type[Mixer]) -> type[Mixer]:
        if name in _MIXERS:
            raise ValueError(f"mixer {name!r} is already registered")
        cls.name = name
        _MIXERS[name] = cls
        return cls

    return add


def mixer_names() -> list[str]:
    return sorted(_MIXERS)


def build_mixer(name: str, num_classes: int, alpha: float | None, **options: Any) -> Mixer:
    if name not in _MIXERS:
        raise ValueError(f"aug.name={name!r}: expected one of {', '.join(mixer_names())}")
    return _MIXERS[name](num_classes, alpha, **options)


@register_mixer("none")
class NoMixing(Mixer):
    def __call__(self, images, labels, generator):
        return MixedBatch(images, one_hot(labels, self.num_classes), 1.0)


@register_mixer("mixup")
class Mixup(Mixer):
    def __call__(self, images, labels, generator):
        lam = float(sample_beta(self.alpha, generator))
        partner = random_partner(images.shape[0], generator)
        return mixup(images, one_hot(labels, self.num_classes), lam, partner)


@register_mixer("cutmix")
class CutMix(Mixer):
    def __call__(self, images, labels, generator):
        lam = float(sample_beta(self.alpha, generator))
        partner = random_partner(images.shape[0], generator)
        box = cutmix_box(images.shape[-2], images.shape[-1], lam, generator)
        return cutmix(images, one_hot(labels, self.num_classes), box, partner)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against probability targets (computed in float32)."""
    return F.cross_entropy(logits.float(), targets)
