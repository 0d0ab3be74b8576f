"""Mixup and CutMix of a batch with itself under a given partner order, for comparisons.

The trainer mixes through mixing.ops.blend/paste with partner rows it has already gathered;
these two spell out the textbook definition (x[partner]) that tests compare it with.
"""

from __future__ import annotations

import torch

from mixup_bench.mixing.batch import MixedBatch
from mixup_bench.mixing.ops import Box, blend, paste


def mixup(images: torch.Tensor, targets: torch.Tensor, lam: float,
          partner: torch.Tensor) -> MixedBatch:
    """x = lam * x + (1 - lam) * x[partner]; the same for the soft targets."""
    return blend(images, targets, images[partner], targets[partner], lam)


def cutmix(images: torch.Tensor, targets: torch.Tensor, box: Box,
           partner: torch.Tensor) -> MixedBatch:
    """Paste box from x[partner] into a copy of x; lambda is the unpasted fraction."""
    return paste(images, targets, images[partner], targets[partner], box)
