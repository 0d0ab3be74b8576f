"""Batch mixing: none, Mixup, CutMix and Mixup-or-CutMix as pure functions behind a registry.

A mixer maps (images, labels, generator) to (mixed images, soft targets).
The trainer always uses the soft-target loss, so it has no branch per method
and a new mixer needs no change there. Mixers never change their inputs in
place and draw only from the torch.Generator they are given (a CPU
generator: lambdas, partners and boxes are then the same on every device).

The `aug.*` switches (lambda shaping, per-example lambda, dataset partners,
alpha schedules, label smoothing) are parsed and computed in
`mixing_variants`; `describe(mixer)` gives the effective settings.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .mixing_variants import (
    MIXING_OPTIONS,
    SMOOTHING_OPTIONS,
    SWITCH_OPTIONS,
    OptionError,
    alpha_at,
    boxes_lambda,
    mixing_on,
    parse_options,
    paste_rows,
    random_boxes,
    sample_beta,  # noqa: F401 - re-exported: part of this module's interface
    sample_lambda,
    smooth_targets,
)

Box = tuple[int, int, int, int]  # (top, bottom, left, right), bottom/right exclusive


@dataclass
class MixedBatch:
    images: torch.Tensor  # (N, C, H, W), same dtype and layout as the input
    targets: torch.Tensor  # (N, num_classes) float, rows sum to 1
    lam: float  # the weight of the original images (1.0: unmixed); the mean with lam_per=sample
    lams: torch.Tensor | None = None  # (N,) per-example weights with lam_per=sample, else None
    method: str = ""  # what this batch got: none, mixup, cutmix (mixup_cutmix per example: both)
    # For mixers that mix inside the network (Manifold Mixup): model -> context manager that
    # is active during the forward pass. None: the images above are all there is to it.
    forward_context: Callable[[torch.nn.Module], Any] | None = None


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels, num_classes).float()


def random_partner(count: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of the batch: image i is mixed with image perm[i]."""
    return torch.randperm(count, generator=generator)


def _rows(values: torch.Tensor, like: torch.Tensor,
          dtype: torch.dtype | None = None) -> torch.Tensor:
    """(N,) -> (N, 1, ...) on like's device (and dtype), to broadcast over each example."""
    return values.to(like.device, dtype or like.dtype).view(-1, *([1] * (like.dim() - 1)))


def blend(images: torch.Tensor, targets: torch.Tensor, partner_images: torch.Tensor,
          partner_targets: torch.Tensor, lam: float | torch.Tensor) -> MixedBatch:
    """lam * x + (1 - lam) * partner for images and targets; lam a float or (N,) per example."""
    if isinstance(lam, torch.Tensor):
        image_weight, target_weight = _rows(lam, images), _rows(lam, targets)
        mixed = images * image_weight + partner_images * (1.0 - image_weight)
        mixed_targets = targets * target_weight + partner_targets * (1.0 - target_weight)
        return MixedBatch(mixed, mixed_targets, float(lam.mean()), lam, "mixup")
    mixed = images * lam + partner_images * (1.0 - lam)
    mixed_targets = targets * lam + partner_targets * (1.0 - lam)
    return MixedBatch(mixed, mixed_targets, float(lam), None, "mixup")


def mixup(images: torch.Tensor, targets: torch.Tensor, lam: float,
          partner: torch.Tensor) -> MixedBatch:
    """x = lam * x + (1 - lam) * x[partner]; the same for the soft targets."""
    partner = partner.to(images.device)
    return blend(images, targets, images[partner], targets[partner], lam)


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


def paste(images: torch.Tensor, targets: torch.Tensor, partner_images: torch.Tensor,
          partner_targets: torch.Tensor, box: Box) -> MixedBatch:
    """Paste one box from partner_images into a copy of images; lambda is the unpasted fraction."""
    height, width = images.shape[-2:]
    top, bottom, left, right = box
    mixed = images.clone()
    mixed[..., top:bottom, left:right] = partner_images[..., top:bottom, left:right]
    lam = box_lambda(box, height, width)
    mixed_targets = targets * lam + partner_targets * (1.0 - lam)
    return MixedBatch(mixed, mixed_targets, lam, None, "cutmix")


def paste_per_example(images: torch.Tensor, targets: torch.Tensor, partner_images: torch.Tensor,
                      partner_targets: torch.Tensor, boxes: torch.Tensor) -> MixedBatch:
    """Row i gets boxes[i] (an (N, 4) long tensor) from partner_images[i]; per-row lambda."""
    height, width = images.shape[-2:]
    lams = boxes_lambda(boxes, height, width)
    weight = _rows(lams, targets)
    mixed_targets = targets * weight + partner_targets * (1.0 - weight)
    return MixedBatch(paste_rows(images, partner_images, boxes), mixed_targets,
                      float(lams.mean()), lams, "cutmix")


def cutmix(images: torch.Tensor, targets: torch.Tensor, box: Box,
           partner: torch.Tensor) -> MixedBatch:
    """Paste box from x[partner] into a copy of x; lambda is the unpasted fraction."""
    partner = partner.to(images.device)
    # images[partner] is gathered (a copy) before the write, so sources stay intact.
    return paste(images, targets, images[partner], targets[partner], box)


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against probability targets (computed in float32)."""
    return F.cross_entropy(logits.float(), targets)


# --- mixers and their registry -------------------------------------------------------


class Mixer:
    """Base class: turns a labelled batch into a mixed batch with soft targets.

    `accepted` names the aug.* options (see mixing_variants.MixOptions) this
    mixer takes; any other option is refused with the list of valid ones.
    """

    name = "base"
    accepted: tuple[str, ...] = ()

    def __init__(self, num_classes: int, alpha: float | None = None, **options: Any) -> None:
        self.num_classes = num_classes
        self.alpha = alpha
        self.options = parse_options(self.name, options, self.accepted)
        self.epoch, self.epochs = 1, None  # epochs None: outside a training loop
        self.loader = None

    def set_epoch(self, epoch: int, epochs: int) -> None:
        """Called by the trainer before each epoch (1-based), for schedules over training."""
        if not 1 <= epoch <= epochs:
            raise ValueError(f"set_epoch({epoch}, {epochs}): expected 1 <= epoch <= epochs")
        self.epoch, self.epochs = epoch, epochs

    def bind(self, loader: Any) -> None:
        """Called once with the training DeviceLoader, for mixers that draw partners from it."""
        self.loader = loader

    def summary(self) -> dict[str, Any]:
        """The effective settings, JSON-ready (options that have no effect are None)."""
        return {"name": self.name, "alpha": self.alpha,
                **{key: getattr(self.options, key, None) for key in sorted(self.accepted)}}

    def __call__(self, images: torch.Tensor, labels: torch.Tensor,
                 generator: torch.Generator) -> MixedBatch:
        raise NotImplementedError


def describe(mixer: Mixer) -> dict[str, Any]:
    """The mixer's effective settings, e.g. for summary.json."""
    return mixer.summary()


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
    """One-hot targets (label-smoothed if asked); the mixing options are accepted and ignored,
    so a sweep can cross aug=none with them."""

    accepted = SMOOTHING_OPTIONS + MIXING_OPTIONS

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": None,
                "label_smoothing": self.options.label_smoothing}

    def __call__(self, images, labels, generator):
        targets = smooth_targets(one_hot(labels, self.num_classes), self.options.label_smoothing)
        return MixedBatch(images, targets, 1.0, None, "none")


class MixingBase(Mixer):
    """What every mixing method shares: alpha schedule, switch-off, lambda shaping, partners."""

    accepted = SMOOTHING_OPTIONS + MIXING_OPTIONS

    def __init__(self, num_classes: int, alpha: float | None = None, **options: Any) -> None:
        super().__init__(num_classes, alpha, **options)
        if (isinstance(alpha, bool) or not isinstance(alpha, (int, float))
                or not math.isfinite(alpha) or alpha <= 0):
            raise OptionError(f"alpha={alpha!r}: expected a number > 0 for aug={self.name}")
        self._partner_loader = None

    def summary(self) -> dict[str, Any]:
        info = super().summary()
        if self.options.alpha_schedule == "constant":
            info["alpha_final"] = None
        if self.options.lam_fold:
            info["lam_min"] = None
        return info

    def current_alpha(self) -> float:
        """The (mixup) alpha of the current epoch under aug.alpha_schedule."""
        options = self.options
        return alpha_at(self.alpha, options.alpha_schedule, options.alpha_final, self.epoch,
                        self.epochs)

    def mixing(self) -> bool:
        """False in the last aug.off_last_epochs epochs."""
        return mixing_on(self.epoch, self.epochs, self.options.off_last_epochs)

    def draw_lambda(self, alpha: float, generator: torch.Generator, count: int) -> torch.Tensor:
        """Shape () with lam_per=batch, (count,) with lam_per=sample."""
        per_example = self.options.lam_per == "sample"
        return sample_lambda(alpha, generator, count if per_example else None,
                             lam_min=self.options.lam_min, fold=self.options.lam_fold)

    def bind(self, loader: Any) -> None:
        super().bind(loader)
        if self.options.partner == "dataset":
            # The partners' crops and flips come from a generator of our own, reseeded per
            # batch from the mixing generator: the loader's stream is left untouched.
            generator = getattr(loader, "generator", None)
            device = generator.device if generator is not None else loader.split.images.device
            self._partner_loader = copy.copy(loader)
            self._partner_loader.generator = torch.Generator(device=device)

    def partners(self, images: torch.Tensor, targets: torch.Tensor,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(partner images, partner targets) for each row, per aug.partner."""
        count = images.shape[0]
        if self.options.partner == "permutation":
            partner = random_partner(count, generator).to(images.device)
            return images[partner], targets[partner]
        if self._partner_loader is None:
            raise RuntimeError(f"aug={self.name} aug.partner=dataset: call mixer.bind(loader) "
                               "with the training loader first")
        # Uniform over the whole training set; augmented and normalised as the batch is,
        # in one batched gather on the device.
        split = self._partner_loader.split
        index = torch.randint(0, split.labels.shape[0], (count,), generator=generator)
        seed = int(torch.randint(0, 2**62, (), generator=generator))
        self._partner_loader.generator.manual_seed(seed)
        index = index.to(split.images.device)
        loader = self._partner_loader
        partner_images = loader.normalise(loader.augment(split.images[index]))
        partner_targets = one_hot(split.labels[index], self.num_classes).to(targets.device)
        return partner_images.to(images.device, images.dtype), partner_targets

    def mix(self, images: torch.Tensor, targets: torch.Tensor,
            generator: torch.Generator) -> MixedBatch:
        raise NotImplementedError

    def __call__(self, images, labels, generator):
        if not self.mixing():  # as aug=none, label smoothing included
            targets = smooth_targets(one_hot(labels, self.num_classes),
                                     self.options.label_smoothing)
            return MixedBatch(images, targets, 1.0, None, "none")
        batch = self.mix(images, one_hot(labels, self.num_classes), generator)
        batch.targets = smooth_targets(batch.targets, self.options.label_smoothing)
        return batch


@register_mixer("mixup")
class Mixup(MixingBase):
    def mix(self, images, targets, generator):
        lam = self.draw_lambda(self.current_alpha(), generator, images.shape[0])
        partner_images, partner_targets = self.partners(images, targets, generator)
        return blend(images, targets, partner_images, partner_targets,
                     lam if lam.dim() else float(lam))


def _cutmix_branch(mixer: MixingBase, alpha: float, images: torch.Tensor, targets: torch.Tensor,
                   generator: torch.Generator) -> MixedBatch:
    lam = mixer.draw_lambda(alpha, generator, images.shape[0])
    partner_images, partner_targets = mixer.partners(images, targets, generator)
    height, width = images.shape[-2:]
    if lam.dim():
        boxes = random_boxes(height, width, lam, generator)
        return paste_per_example(images, targets, partner_images, partner_targets, boxes)
    box = cutmix_box(height, width, float(lam), generator)
    return paste(images, targets, partner_images, partner_targets, box)


@register_mixer("cutmix")
class CutMix(MixingBase):
    """With lam_per=sample each example gets its own lambda and box (a batched mask)."""

    def mix(self, images, targets, generator):
        return _cutmix_branch(self, self.current_alpha(), images, targets, generator)


@register_mixer("mixup_cutmix")
class MixupCutMix(MixingBase):
    """CutMix with probability switch_prob, else Mixup (timm's switch_prob).

    `alpha` is the Mixup alpha and aug.cutmix_alpha the CutMix one; an alpha
    schedule scales both by the same factor current_alpha / alpha. With
    lam_per=batch the choice is per batch; with lam_per=sample per example
    (timm's mode="elem"), each example with its branch's lambda.
    """

    accepted = MixingBase.accepted + SWITCH_OPTIONS

    def mix(self, images, targets, generator):
        mixup_alpha = self.current_alpha()
        cutmix_alpha = self.options.cutmix_alpha * mixup_alpha / self.alpha
        switch = self.options.switch_prob
        if self.options.lam_per == "batch":
            if bool(torch.rand((), generator=generator) < switch):
                return _cutmix_branch(self, cutmix_alpha, images, targets, generator)
            lam = float(self.draw_lambda(mixup_alpha, generator, images.shape[0]))
            partner_images, partner_targets = self.partners(images, targets, generator)
            return blend(images, targets, partner_images, partner_targets, lam)
        count = images.shape[0]
        use_cutmix = torch.rand(count, generator=generator) < switch
        mixup_lam = self.draw_lambda(mixup_alpha, generator, count)
        cutmix_lam = self.draw_lambda(cutmix_alpha, generator, count)
        partner_images, partner_targets = self.partners(images, targets, generator)
        boxes = random_boxes(images.shape[-2], images.shape[-1], cutmix_lam, generator)
        blended = blend(images, targets, partner_images, partner_targets, mixup_lam)
        pasted = paste_per_example(images, targets, partner_images, partner_targets, boxes)
        lams = torch.where(use_cutmix, pasted.lams, blended.lams)
        mixed = torch.where(_rows(use_cutmix, images, torch.bool), pasted.images, blended.images)
        mixed_targets = torch.where(_rows(use_cutmix, targets, torch.bool), pasted.targets,
                                    blended.targets)
        return MixedBatch(mixed, mixed_targets, float(lams.mean()), lams, "mixup_cutmix")


# Mixers defined in their own modules register themselves on import.
from . import manifold as _manifold  # noqa: E402,F401
