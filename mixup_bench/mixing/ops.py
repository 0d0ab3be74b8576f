"""The batch maths of mixing: one-hot and smoothed targets, blends, CutMix boxes and pastes.

Pure tensor functions, shared by every method family: they never change their
inputs in place and draw only from the torch.Generator they are given.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .batch import MixedBatch

Box = tuple[int, int, int, int]  # (top, bottom, left, right), bottom/right exclusive


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    return F.one_hot(labels, num_classes).float()


def random_partner(count: int, generator: torch.Generator) -> torch.Tensor:
    """A random permutation of the batch: image i is mixed with image perm[i]."""
    return torch.randperm(count, generator=generator)


def as_rows(values: torch.Tensor, like: torch.Tensor,
          dtype: torch.dtype | None = None) -> torch.Tensor:
    """(N,) -> (N, 1, ...) on like's device (and dtype), to broadcast over each example."""
    return values.to(like.device, dtype or like.dtype).view(-1, *([1] * (like.dim() - 1)))


def blend(images: torch.Tensor, targets: torch.Tensor, partner_images: torch.Tensor,
          partner_targets: torch.Tensor, lam: float | torch.Tensor,
          lam_mean: float | None = None) -> MixedBatch:
    """lam * x + (1 - lam) * partner for images and targets; lam a float or (N,) per example.

    lam_mean: lam.mean() computed beforehand on the CPU; without it a device lam's mean is
    read back here (a host synchronisation).
    """
    if isinstance(lam, torch.Tensor):
        image_weight, target_weight = as_rows(lam, images), as_rows(lam, targets)
        mixed = images * image_weight + partner_images * (1.0 - image_weight)
        mixed_targets = targets * target_weight + partner_targets * (1.0 - target_weight)
        mean = float(lam.mean()) if lam_mean is None else lam_mean
        return MixedBatch(mixed, mixed_targets, mean, lam, "mixup")
    mixed = images * lam + partner_images * (1.0 - lam)
    mixed_targets = targets * lam + partner_targets * (1.0 - lam)
    return MixedBatch(mixed, mixed_targets, float(lam), None, "mixup")


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
                      partner_targets: torch.Tensor, boxes: torch.Tensor,
                      lams: torch.Tensor | None = None,
                      lam_mean: float | None = None) -> MixedBatch:
    """Row i gets boxes[i] (an (N, 4) long tensor) from partner_images[i]; per-row lambda.

    lams, lam_mean: boxes_lambda(boxes) and its mean, computed beforehand on the CPU;
    without lam_mean the mean is read back from the device (a host synchronisation).
    """
    height, width = images.shape[-2:]
    lams = boxes_lambda(boxes, height, width) if lams is None else lams
    weight = as_rows(lams, targets)
    mixed_targets = targets * weight + partner_targets * (1.0 - weight)
    mean = float(lams.mean()) if lam_mean is None else lam_mean
    return MixedBatch(paste_rows(images, partner_images, boxes), mixed_targets, mean, lams,
                      "cutmix")


def soft_target_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against probability targets (computed in float32)."""
    return F.cross_entropy(logits.float(), targets)


def smooth_targets(targets: torch.Tensor, epsilon: float) -> torch.Tensor:
    """(1 - eps) * targets + eps / K, as F.cross_entropy(label_smoothing=eps) does to one-hots."""
    if not epsilon:
        return targets
    return targets * (1.0 - epsilon) + epsilon / targets.shape[-1]


# --- one CutMix box per example --------------------------------------------------


def boxes_from_centres(height: int, width: int, lam: torch.Tensor, centre_y: torch.Tensor,
                       centre_x: torch.Tensor) -> torch.Tensor:
    """`box_from_centre` for N examples at once: (N, 4) long (top, bottom, left, right)."""
    ratio = (1.0 - lam.double()).sqrt()
    cut_height = (height * ratio).floor().long()
    cut_width = (width * ratio).floor().long()
    top = (centre_y - cut_height // 2).clamp(0, height)
    bottom = (centre_y + (cut_height + 1) // 2).clamp(0, height)
    left = (centre_x - cut_width // 2).clamp(0, width)
    right = (centre_x + (cut_width + 1) // 2).clamp(0, width)
    return torch.stack([top, bottom, left, right], dim=1)


def random_boxes(height: int, width: int, lam: torch.Tensor,
                 generator: torch.Generator) -> torch.Tensor:
    """(N, 4) boxes of area ~(1 - lam[i]) H W with uniform centres, clipped (CPU, long)."""
    count = lam.shape[0]
    centre_y = torch.randint(0, height, (count,), generator=generator)
    centre_x = torch.randint(0, width, (count,), generator=generator)
    return boxes_from_centres(height, width, lam, centre_y, centre_x)


def boxes_lambda(boxes: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(N,) fraction of each image NOT covered by its box (float32)."""
    area = (boxes[:, 1] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 2])
    return (1.0 - area.double() / (height * width)).float()


def box_masks(boxes: torch.Tensor, height: int, width: int, device: torch.device) -> torch.Tensor:
    """(N, 1, H, W) bool, True inside each example's box."""
    boxes = boxes.to(device)
    rows = torch.arange(height, device=device).view(1, height, 1)
    cols = torch.arange(width, device=device).view(1, 1, width)
    inside_rows = (rows >= boxes[:, 0].view(-1, 1, 1)) & (rows < boxes[:, 1].view(-1, 1, 1))
    inside_cols = (cols >= boxes[:, 2].view(-1, 1, 1)) & (cols < boxes[:, 3].view(-1, 1, 1))
    return (inside_rows & inside_cols).unsqueeze(1)


def paste_rows(images: torch.Tensor, partner_images: torch.Tensor,
               boxes: torch.Tensor) -> torch.Tensor:
    """A new batch: row i is images[i] with boxes[i] taken from partner_images[i]."""
    height, width = images.shape[-2:]
    return torch.where(box_masks(boxes, height, width, images.device), partner_images, images)
