"""GridMix (Baek et al., Pattern Recognition 2021, "GridMix: Strong regularization through
local context mapping"), as OpenMixup ports it from IlyaDobrynin/GridMixup.

A grid of square-ish holes, filled from the partner: a cut region of
cut_area * H * W pixels and aspect ratio cut_aspect (height / width) is
placed uniformly inside the image and split into n_holes patches across;
each patch's top-left hole has sides sqrt(1 - lam) of the patch's, so about
1 - lam of the cut region comes from the partner. n_holes, cut_area and
cut_aspect are drawn per grid from their ranges (OpenMixup's CIFAR setting:
n_holes 2..6, cut_area 0.5..1, cut_aspect 0.5..2, hole_aspect 1). lambda,
the weight of the row's own label, is then set to the real unmixed fraction
of the image, counted exactly from the grid's sizes on the CPU.

Every draw is made on the CPU: a grid is 8 integers (its region, patch and
hole sizes); the device builds the masks from them by index arithmetic, so a
step copies nothing. lam_per=batch: one lambda and one grid per batch (as
OpenMixup); lam_per=sample: one of each per example.

What differs from OpenMixup's code (openmixup/models/augments/gridmix.py)
and why:
- OpenMixup builds its mask on the CPU with a Python loop over holes and
  copies it each step; here it is built on the device from the drawn sizes.
- Its patch height int(patch_width * hole_aspect) can be 0 (a division by
  zero) or 1 (holes of height 0); its n_holes must be <= the region's width
  // 2 or an assertion fails. Here patches are at least 2 pixels, holes at
  least 1 pixel and at most the patch less one pixel, and n_holes is
  clamped to the region's width // 2, so every draw gives a grid.
- It indexes the mask as (W, H), which agrees with (H, W) only on square
  images; here heights and widths are kept apart.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .base import MixingBase, register_mixer
from .batch import MixedBatch
from .ops import as_rows
from .options import OptionError

DEFAULTS: dict[str, tuple[float, float]] = {  # OpenMixup's CIFAR config
    "n_holes": (2, 6), "cut_area": (0.5, 1.0), "cut_aspect": (0.5, 2.0)}
DEFAULT_HOLE_ASPECT = 1.0
# A grid's 8 integers: the cut region's top, left, height and width; the patch's height and
# width; the hole's height and width.
TOP, LEFT, CUT_H, CUT_W, PATCH_H, PATCH_W, HOLE_H, HOLE_W = range(8)


def parse_range(key: str, value: Any, low: float, high: float, integer: bool = False
                ) -> tuple[float, float]:
    """A number or a [min, max] pair within [low, high], min <= max."""
    pair = list(value) if isinstance(value, (list, tuple)) else [value, value]
    kind = "an integer" if integer else "a number"
    allowed = f"{kind} in [{low:g}, {high:g}] or a [min, max] pair of them"
    if len(pair) != 2:
        raise OptionError(f"aug.{key}={value!r}: expected {allowed}")
    for item in pair:
        if (isinstance(item, bool) or not isinstance(item, (int, float))
                or (integer and not float(item).is_integer())
                or not math.isfinite(item) or not low <= item <= high):
            raise OptionError(f"aug.{key}={value!r}: expected {allowed}")
    if pair[0] > pair[1]:
        raise OptionError(f"aug.{key}={value!r}: expected min <= max")
    return (int(pair[0]), int(pair[1])) if integer else (float(pair[0]), float(pair[1]))


def draw_grids(lams: torch.Tensor, height: int, width: int, n_holes: tuple[int, int],
               cut_area: tuple[float, float], cut_aspect: tuple[float, float],
               hole_aspect: float, generator: torch.Generator) -> torch.Tensor:
    """(N, 8) long grids, one per lambda, drawn on the CPU (columns: TOP ... HOLE_W)."""
    count = lams.shape[0]
    uniform = torch.rand((count, 4), generator=generator, dtype=torch.float64)
    holes = torch.randint(n_holes[0], n_holes[1] + 1, (count,), generator=generator)
    area = (cut_area[0] + (cut_area[1] - cut_area[0]) * uniform[:, 0]) * height * width
    aspect = cut_aspect[0] + (cut_aspect[1] - cut_aspect[0]) * uniform[:, 1]
    cut_w = (area / aspect).sqrt().floor().long().clamp(2, width)
    cut_h = (cut_w * aspect).floor().long().clamp(2, height)
    top = ((height - cut_h) * uniform[:, 2]).floor().long()
    left = ((width - cut_w) * uniform[:, 3]).floor().long()
    holes = torch.minimum(holes, cut_w // 2)
    patch_w = (cut_w + holes - 1) // holes  # ceil(cut_w / holes) >= 2
    patch_h = (patch_w * hole_aspect).floor().long().clamp(min=2)
    ratio = (1.0 - lams.double()).sqrt()
    hole_w = torch.minimum((patch_w * ratio).floor().long().clamp(min=1), patch_w - 1)
    hole_h = torch.minimum((patch_h * ratio).floor().long().clamp(min=1), patch_h - 1)
    return torch.stack([top, left, cut_h, cut_w, patch_h, patch_w, hole_h, hole_w], dim=1)


def covered(length: torch.Tensor, patch: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """How many of 0..length-1 fall in a hole: offsets o with o % patch < hole."""
    return (length // patch) * hole + torch.minimum(length % patch, hole)


def grids_lambda(grids: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N,) float32: the fraction of each image outside its grid's holes (exact, on the CPU)."""
    rows = covered(grids[:, CUT_H], grids[:, PATCH_H], grids[:, HOLE_H])
    cols = covered(grids[:, CUT_W], grids[:, PATCH_W], grids[:, HOLE_W])
    return (1.0 - (rows * cols).double() / (height * width)).float()


def grid_masks(grids: torch.Tensor, height: int, width: int, device: torch.device
               ) -> torch.Tensor:
    """(N, 1, H, W) bool, True on the grid's holes (the partner's pixels); grids on `device`."""

    def axis(size: int, start: int, length: int, patch: int, hole: int) -> torch.Tensor:
        offset = torch.arange(size, device=device).view(1, -1) - grids[:, start].view(-1, 1)
        inside = (offset >= 0) & (offset < grids[:, length].view(-1, 1))
        return inside & (offset.clamp(min=0) % grids[:, patch].view(-1, 1)
                         < grids[:, hole].view(-1, 1))

    rows = axis(height, TOP, CUT_H, PATCH_H, HOLE_H)
    cols = axis(width, LEFT, CUT_W, PATCH_W, HOLE_W)
    return (rows.unsqueeze(2) & cols.unsqueeze(1)).unsqueeze(1)


@register_mixer("gridmix")
class GridMix(MixingBase):
    """aug.n_holes (integers >= 1), aug.cut_area (0, 1], aug.cut_aspect (> 0): a number or a
    [min, max] range each; aug.hole_aspect (> 0): the hole's height / width."""

    accepted = MixingBase.accepted + ("n_holes", "cut_area", "cut_aspect", "hole_aspect")
    epoch_draws = True

    def __init__(self, num_classes: int, alpha: float | None = None,
                 n_holes: Any = DEFAULTS["n_holes"], cut_area: Any = DEFAULTS["cut_area"],
                 cut_aspect: Any = DEFAULTS["cut_aspect"],
                 hole_aspect: Any = DEFAULT_HOLE_ASPECT, **options: Any) -> None:
        super().__init__(num_classes, alpha, **options)
        self.n_holes = parse_range("n_holes", n_holes, 1, 1024, integer=True)
        self.cut_area = parse_range("cut_area", cut_area, 1e-6, 1.0)
        self.cut_aspect = parse_range("cut_aspect", cut_aspect, 1e-3, 1e3)
        if isinstance(hole_aspect, (list, tuple)):
            raise OptionError(f"aug.hole_aspect={hole_aspect!r}: expected a number in "
                              "[0.001, 1000]")
        self.hole_aspect = parse_range("hole_aspect", hole_aspect, 1e-3, 1e3)[0]

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "n_holes": list(self.n_holes),
                "cut_area": list(self.cut_area), "cut_aspect": list(self.cut_aspect),
                "hole_aspect": self.hole_aspect}

    def draw(self, count, height, width, generator):
        lam = self.draw_lambda(self.current_alpha(), generator, count)
        partners = self.draw_partners(count, generator)
        grids = draw_grids(lam.reshape(-1), height, width, self.n_holes, self.cut_area,
                           self.cut_aspect, self.hole_aspect, generator)
        lams = grids_lambda(grids, height, width)
        if lam.dim():
            return {**partners, "grids": grids, "lams": lams, "lam_mean": float(lams.mean())}
        return {**partners, "grids": grids.expand(count, -1).contiguous(),
                "lams": lams.expand(count).contiguous(), "lam_mean": float(lams[0]),
                "per_batch": True}

    def apply(self, images, targets, draws):
        height, width = images.shape[-2:]
        partner_images, partner_targets = self.take_partners(images, targets, draws)
        holes = grid_masks(draws["grids"], height, width, images.device)
        mixed = torch.where(holes, partner_images, images)
        weight = as_rows(draws["lams"], targets)
        mixed_targets = targets * weight + partner_targets * (1.0 - weight)
        lams = None if draws.get("per_batch") else draws["lams"]
        return MixedBatch(mixed, mixed_targets, draws["lam_mean"], lams, "gridmix")
