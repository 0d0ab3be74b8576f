"""AttentiveMix (Walawalkar et al., ICASSP 2020, "Attentive CutMix"), guided by the network
being trained.

The partner's image is split into a grid x grid grid of equal cells; its
last stage's activation map (the network's forward_features, averaged over
channels and pooled to the grid) ranks the cells, and the partner's top k
cells are pasted into the row's own image at the same place. k comes from
lambda ~ Beta(alpha, alpha): k = round((1 - lambda) * grid^2), so the pasted
share follows the CutMix lambda; the targets weight the own label by the real
unpasted share 1 - k / grid^2 (exactly its pixel share: the cells are equal).
The default grid 4 is a CIFAR ResNet-18's last stage on a 32x32 image.

Cost: one extra forward pass of the partners per mixed batch, without
gradients and without touching BatchNorm's running statistics (see
guided.py); with trainer.compile=true it runs eagerly, the training forward
compiled.

What differs from the paper and OpenMixup's code, and why:
- The paper (and OpenMixup's "AttentiveMix+") rank cells with a separate
  *pretrained* network (ResNet-50 on ImageNet); none can be downloaded here
  and a CIFAR benchmark should not depend on outside weights, so the network
  being trained ranks them (the issue's brief). Early in training its
  attention is close to uniform: the method then behaves like a grid CutMix.
- The paper pastes a fixed k (6 of 49 cells) and OpenMixup's config passes a
  `beta` that never reaches its code; here k follows lambda, so alpha has an
  effect and the label weight is the real pasted share.
- Draws (lambda, partners) are made on the CPU from the mixing generator, an
  epoch at once (draws.py), so the cells chosen depend only on the seed and the
  network; OpenMixup draws with NumPy's global generator per batch.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from .base import register_mixer
from .batch import MixedBatch
from .guided import ModelGuide, ModelGuidedMixer
from .ops import as_rows
from .options import OptionError

DEFAULT_GRID = 4


def parse_grid(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        raise OptionError(f"aug.grid={value!r}: expected an integer in [1, 64]")
    return value


def top_cells_mask(scores: torch.Tensor, pasted: torch.Tensor) -> torch.Tensor:
    """(N, cells) bool: True on each row's `pasted[i]` highest-scoring cells (ties: lower index)."""
    order = torch.argsort(scores, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order).scatter_(
        1, order, torch.arange(scores.shape[1], device=scores.device).expand_as(order))
    return ranks < pasted.view(-1, 1)


def cells_to_pixels(cells: torch.Tensor, grid: int, height: int, width: int) -> torch.Tensor:
    """(N, grid*grid) -> (N, 1, H, W): each cell's value over its (H/grid) x (W/grid) pixels."""
    per_cell = cells.view(-1, 1, grid, grid)
    return per_cell.repeat_interleave(height // grid, 2).repeat_interleave(width // grid, 3)


@register_mixer("attentivemix")
class AttentiveMix(ModelGuidedMixer):
    """aug.grid: cells per side (default 4; the image's height and width must divide by it)."""

    accepted = ModelGuidedMixer.accepted + ("grid",)
    extra_passes = "1 forward (no grad) of the partners"

    def __init__(self, num_classes: int, alpha: float | None = None,
                 grid: Any = DEFAULT_GRID, **options: Any) -> None:
        super().__init__(num_classes, alpha, **options)
        self.grid = parse_grid(grid)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "grid": self.grid}

    def draw(self, count, height, width, generator):
        if height % self.grid or width % self.grid:
            raise OptionError(f"aug.grid={self.grid}: expected a divisor of the image size "
                              f"{height}x{width}")
        cells = self.grid * self.grid
        lam = self.draw_lambda(self.current_alpha(), generator, count)
        pasted = ((1.0 - lam.double()) * cells).round().long().expand(count).contiguous()
        lams = 1.0 - pasted.double() / cells  # the real unpasted share, on the CPU
        return {**self.draw_partners(count, generator), "pasted": pasted,
                "lams": lams.float(), "per_sample": bool(lam.dim()),
                "lam_mean": float(lams.mean())}

    def mix_with_model(self, images, targets, draws, guide: ModelGuide) -> MixedBatch:
        partner_images, partner_targets = self.take_partners(images, targets, draws)
        height, width = images.shape[-2:]
        attention = guide.feature_maps(partner_images).mean(dim=1, keepdim=True)
        scores = F.adaptive_avg_pool2d(attention, self.grid).flatten(1)
        mask = cells_to_pixels(top_cells_mask(scores, draws["pasted"]), self.grid, height, width)
        mixed = torch.where(mask, partner_images, images)
        weight = as_rows(draws["lams"], targets)
        mixed_targets = targets * weight + partner_targets * (1.0 - weight)
        return MixedBatch(mixed, mixed_targets, draws["lam_mean"],
                          draws["lams"] if draws["per_sample"] else None, "attentivemix")
