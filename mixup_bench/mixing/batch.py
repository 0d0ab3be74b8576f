"""MixedBatch: what every mixer returns and the trainer consumes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch


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
