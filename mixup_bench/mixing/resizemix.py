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
mixing generator; the resizing and pasting run on the images' device, one
bilinear interpolate per distinct pasted size, and one batched paste.
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


def resize_paste(images: torch.Tensor, partner_images: torch.Tensor,
                 boxes: torch.Tensor) -> torch.Tensor:
    """A new batch: row i with partner_images[i], resized to fit boxes[i], pasted into it.

    boxes: (N, 4) long (top, bottom, left, right), bottom/right exclusive.
    Rows are grouped by box size: one interpolate per distinct size, then
    each resized partner is spread over the full image by index gathers
    (clamped outside its box) and one torch.where keeps it inside the box.
    """
    height, width = images.shape[-2:]
    device = images.device
    sizes = torch.stack([boxes[:, 1] - boxes[:, 0], boxes[:, 3] - boxes[:, 2]], dim=1).cpu()
    starts = boxes[:, 0::2].to(device)  # (N, 2): top, left
    spread = torch.empty_like(images)
    for size in torch.unique(sizes, dim=0).tolist():  # grouped on the CPU: no device syncs
        rows = (sizes == torch.tensor(size)).all(dim=1).nonzero().view(-1).to(device)
        resized = F.interpolate(partner_images.index_select(0, rows), size=tuple(size),
                                mode="bilinear", align_corners=False)
        count, channels = resized.shape[:2]
        top, left = starts.index_select(0, rows).unbind(1)
        y = (torch.arange(height, device=device) - top.view(-1, 1)).clamp(0, size[0] - 1)
        x = (torch.arange(width, device=device) - left.view(-1, 1)).clamp(0, size[1] - 1)
        resized = resized.gather(2, y.view(count, 1, height, 1).expand(-1, channels, -1, size[1]))
        resized = resized.gather(3, x.view(count, 1, 1, width).expand(-1, channels, height, -1))
        spread.index_copy_(0, rows, resized)
    return torch.where(box_masks(boxes, height, width, device), spread, images)


@register_mixer("resizemix")
class ResizeMix(MixingBase):
    """aug.scale_min, aug.scale_max: the range of tau, 0 < min <= max < 1 (default 0.1, 0.8)."""

    accepted = MixingBase.accepted + ("scale_min", "scale_max")

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

    def mix(self, images: torch.Tensor, targets: torch.Tensor,
            generator: torch.Generator) -> MixedBatch:
        per_example = self.options.lam_per == "sample"
        count, (height, width) = images.shape[0], images.shape[-2:]
        draws = count if per_example else 1
        span = self.scale_max - self.scale_min
        scale = self.scale_min + span * torch.rand(draws, generator=generator, dtype=torch.float64)
        partner_images, partner_targets = self.partners(images, targets, generator)
        cut_height = (scale * height).round().long().clamp(1, height)
        cut_width = (scale * width).round().long().clamp(1, width)
        top = (torch.rand(draws, generator=generator, dtype=torch.float64)
               * (height - cut_height + 1)).floor().long()
        left = (torch.rand(draws, generator=generator, dtype=torch.float64)
                * (width - cut_width + 1)).floor().long()
        boxes = torch.stack([top, top + cut_height, left, left + cut_width], dim=1)
        lams = (1.0 - (cut_height * cut_width).double() / (height * width)).float()
        mixed = resize_paste(images, partner_images, boxes.expand(count, -1))
        weight = as_rows(lams, targets) if per_example else float(lams[0])
        mixed_targets = targets * weight + partner_targets * (1.0 - weight)
        return MixedBatch(mixed, mixed_targets, float(lams.mean()),
                          lams if per_example else None, "resizemix")
