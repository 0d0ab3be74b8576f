"""ResizeMix (Qin et al. 2020, "ResizeMix: Mixing Data with Preserved Object Information
and True Labels").

CutMix pastes a crop of the partner, which may miss its object; ResizeMix
pastes the WHOLE partner, shrunk by a scale tau ~ Uniform(scale_min,
scale_max) to (round(tau * H), round(tau * W)) pixels (at least 1), at a
uniformly random position fully inside the image. lambda, the weight of the
row's own label, is the unpasted area fraction 1 - h * w / (H * W), exactly.

No Beta lambda is drawn: `alpha` is validated (as for every mixer) but
unused, and lam_min, lam_fold and the alpha schedules do not apply to tau;
summary() reports them as None. lam_per=batch draws one scale and position
per batch, lam_per=sample one per example. All draws come from the CPU
mixing generator, with the rows grouped by pasted size there; in a training
loop an epoch's draws are copied to the device at once (base.py, draws.py).
The resizing and pasting run on the images' device, one bilinear
interpolate per distinct pasted size and one batched paste, with no copy
and no synchronisation.

What differs from OpenMixup's code (openmixup/models/augments/resizemix.py)
and why: OpenMixup (use_alpha=True, its CIFAR setting) draws tau ~
Beta(alpha, alpha) and, where that falls outside its scope (0.1, 0.8),
Uniform(scope) instead, one scale and box per batch, from NumPy's global
generator; here tau ~ Uniform(scale_min, scale_max) as the paper, from the
seeded mixing generator, per example with lam_per=sample.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from .base import MixingBase, register_mixer
from .batch import MixedBatch
from .ops import as_rows, box_masks
from .options import OptionError

DEFAULT_SCALE = (0.1, 0.8)  # the ResizeMix paper's range for tau


def parse_scale(key: str, value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or not 0 < value < 1):
        raise OptionError(f"aug.{key}={value!r}: expected a number in (0, 1)")
    return float(value)


def size_groups(boxes: torch.Tensor) -> dict[str, object]:
    """The rows of (N, 4) CPU boxes grouped by pasted size, for `resize_paste`: "order" (the
    rows, group after group, a long tensor) and "groups" ((height, width, rows) per group)."""
    sizes = torch.stack([boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]], dim=1)
    distinct, group = torch.unique(sizes, dim=0, return_inverse=True)
    order = torch.argsort(group, stable=True)
    counts = torch.bincount(group, minlength=distinct.shape[0])
    groups = [(int(h), int(w), int(n))
              for (h, w), n in zip(distinct.tolist(), counts.tolist(), strict=True)]
    return {"order": order, "groups": groups}


def resize_paste(images: torch.Tensor, partner_images: torch.Tensor, boxes: torch.Tensor,
                 order: torch.Tensor, groups: list[tuple[int, int, int]]) -> torch.Tensor:
    """A new batch: row i with partner_images[i], resized to fit boxes[i], pasted into it.

    boxes: (N, 4) long (top, bottom, left, right), bottom/right exclusive, on the
    images' device; order, groups: `size_groups(boxes)` (drawn on the CPU, so no
    device value is read back). One interpolate per distinct size, then each
    resized partner is spread over the full image by index gathers (clamped
    outside its box) and one torch.where keeps it inside the box.
    """
    height, width = images.shape[-2:]
    device = images.device
    starts = boxes[:, 0::2]  # (N, 2): top, left
    spread = torch.empty_like(images)
    offset = 0
    for size_height, size_width, count in groups:
        rows = order[offset:offset + count]
        offset += count
        resized = F.interpolate(partner_images.index_select(0, rows),
                                size=(size_height, size_width), mode="bilinear",
                                align_corners=False)
        channels = resized.shape[1]
        top, left = starts.index_select(0, rows).unbind(1)
        y = (torch.arange(height, device=device) - top.view(-1, 1)).clamp(0, size_height - 1)
        x = (torch.arange(width, device=device) - left.view(-1, 1)).clamp(0, size_width - 1)
        resized = resized.gather(2, y.view(count, 1, height, 1).expand(-1, channels, -1,
                                                                       size_width))
        resized = resized.gather(3, x.view(count, 1, 1, width).expand(-1, channels, height, -1))
        spread.index_copy_(0, rows, resized)
    return torch.where(box_masks(boxes, height, width, device), spread, images)


@register_mixer("resizemix")
class ResizeMix(MixingBase):
    """aug.scale_min, aug.scale_max: the range of tau, 0 < min <= max < 1 (default 0.1, 0.8)."""

    accepted = MixingBase.accepted + ("scale_min", "scale_max")
    epoch_draws = True

    def __init__(self, num_classes: int, alpha: float | None = None,
                 scale_min: Any = DEFAULT_SCALE[0], scale_max: Any = DEFAULT_SCALE[1],
                 **options: Any) -> None:
        super().__init__(num_classes, alpha, **options)
        self.scale_min = parse_scale("scale_min", scale_min)
        self.scale_max = parse_scale("scale_max", scale_max)
        if self.scale_min > self.scale_max:
            raise OptionError(f"aug.scale_min={scale_min!r}: expected a number <= "
                              f"aug.scale_max={scale_max!r}")

    def summary(self) -> dict[str, Any]:
        # tau is Uniform(scale_min, scale_max): alpha, its schedules and lambda shaping are unused.
        return {**super().summary(), "alpha": None, "alpha_schedule": None, "alpha_final": None,
                "lam_min": None, "lam_fold": None, "scale_min": self.scale_min,
                "scale_max": self.scale_max}

    def draw(self, count, height, width, generator):
        per_example = self.options.lam_per == "sample"
        draws = count if per_example else 1
        span = self.scale_max - self.scale_min
        scale = self.scale_min + span * torch.rand(draws, generator=generator, dtype=torch.float64)
        partners = self.draw_partners(count, generator)
        cut_height = (scale * height).round().long().clamp(1, height)
        cut_width = (scale * width).round().long().clamp(1, width)
        top = (torch.rand(draws, generator=generator, dtype=torch.float64)
               * (height - cut_height + 1)).floor().long()
        left = (torch.rand(draws, generator=generator, dtype=torch.float64)
                * (width - cut_width + 1)).floor().long()
        boxes = torch.stack([top, top + cut_height, left, left + cut_width], dim=1)
        boxes = boxes.expand(count, -1).contiguous()
        lams = (1.0 - (cut_height * cut_width).double() / (height * width)).float()
        weights = {"lams": lams} if per_example else {"lam": float(lams[0])}
        return {**partners, "boxes": boxes, **size_groups(boxes), **weights,
                "lam_mean": float(lams.mean())}

    def apply(self, images, targets, draws):
        partner_images, partner_targets = self.take_partners(images, targets, draws)
        mixed = resize_paste(images, partner_images, draws["boxes"], draws["order"],
                             draws["groups"])
        per_example = "lams" in draws
        weight = as_rows(draws["lams"], targets) if per_example else draws["lam"]
        mixed_targets = targets * weight + partner_targets * (1.0 - weight)
        return MixedBatch(mixed, mixed_targets, draws["lam_mean"],
                          draws["lams"] if per_example else None, "resizemix")
