"""SaliencyMix (Uddin et al., ICLR 2021, "SaliencyMix: A Saliency Guided Data Augmentation
Strategy for Better Regularization").

CutMix whose box is not placed at random: a box of side sqrt(1 - lam) of the
image's, centred on the peak of the PARTNER's saliency map, is pasted from
the partner, so the pasted patch holds the partner's most salient part. The
box is clipped to the image; each row's target weights are the real shares
of its pixels (1 - box area / image area for its own label).

The saliency map is OpenCV's StaticSaliencyFineGrained (Montabone and Soto
2010), the one the paper and OpenMixup use, computed here in torch on the
images' device: on a grey image g, smoothed twice by a 3 x 3 binomial kernel,
for each of the radii 12, 24, 48, 28, 56, 112 the mean m of the square
neighbourhood around each pixel (clipped to the image, the pixel itself left
out), the centre-on part max(g - m, 0) and the centre-off part max(m - g, 0)
summed over radii, each sum scaled to a peak of 1, and the two added.
tests/test_saliency_opencv.py compares it with OpenCV's on 200 real CIFAR-10
images: the maps correlate at 0.9996 on average and the peak is the same
pixel for 78% of them, within 2 pixels for 97% (OpenCV rounds to 8 bits at
every stage, which makes ties). Its peak, like OpenMixup's, is read from the
normalised images as the batch holds them.

What differs from OpenMixup's code (openmixup/models/augments/saliencymix.py)
and why:
- OpenMixup computes ONE saliency map, of the first row's partner, on the CPU
  with OpenCV, and pastes the same box into every row. Here every row's box
  is centred on its own partner's peak (the paper's method: the patch should
  hold the partner's salient object), batched on the device: no OpenCV at
  run time, no copy of images to the host, no synchronisation.
- OpenMixup writes the box into its input batch in place; here the inputs
  are never changed.
- OpenMixup's box is x +- side // 2 (one pixel short on odd sides); here the
  side is exactly int(H * sqrt(1 - lam)) before clipping, as CutMix's boxes
  in ops.box_from_centre.
With aug.lam_per=sample each row also gets its own lambda. MixedBatch.lam is
the mean of the drawn lambdas (known on the host); the real per-row shares,
which the targets use, are in MixedBatch.lams, on the device (reading their
mean back would synchronise every step).
"""

from __future__ import annotations

from collections import Counter

import torch
import torch.nn.functional as F

from .base import MixingBase, register_mixer
from .batch import MixedBatch
from .ops import as_rows, boxes_from_centres, boxes_lambda, paste_rows

# OpenCV's StaticSaliencyFineGrained neighbourhood radii (3 * 4 and 7 * 4, each doubled twice).
SALIENCY_RADII = (12, 24, 48, 28, 56, 112)
# ITU-R 601 luma weights of R, G, B, as OpenCV's BGR -> grey conversion.
LUMA = (0.299, 0.587, 0.114)


def grey(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W) float32: luma for RGB images, the channel mean otherwise."""
    images = images.float()
    if images.shape[1] == 3:  # Python weights: no tensor to copy to the device
        return sum(images[:, channel] * weight for channel, weight in enumerate(LUMA))
    return images.mean(dim=1)


def blur(gray: torch.Tensor) -> torch.Tensor:
    """(N, H, W) smoothed by the 3 x 3 binomial kernel ([1, 2, 1] / 4 along each axis, mirrored
    borders without repeating the edge): OpenCV's GaussianBlur(3 x 3, sigma 0)."""
    padded = F.pad(gray.unsqueeze(1), (1, 1, 1, 1), mode="reflect").squeeze(1)
    rows = (padded[:, :-2] + 2 * padded[:, 1:-1] + padded[:, 2:]) / 4
    return (rows[:, :, :-2] + 2 * rows[:, :, 1:-1] + rows[:, :, 2:]) / 4


def fine_grained_saliency(images: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W) saliency in [0, 2], OpenCV's StaticSaliencyFineGrained map
    up to its 8-bit rounding (see the module docstring)."""
    gray = blur(blur(grey(images)))  # smoothed twice, as OpenCV does (after Frintrop and Itti)
    count, height, width = gray.shape
    # integral[n, y, x] = sum of gray[n, :y, :x].
    integral = F.pad(gray.cumsum(1).cumsum(2), (1, 0, 1, 0))
    ys = torch.arange(height, device=gray.device)
    xs = torch.arange(width, device=gray.device)
    on = torch.zeros_like(gray)
    off = torch.zeros_like(gray)
    # A radius of max(H, W) or more spans the whole image around every pixel: such radii
    # give one window, computed once and counted for each of them.
    radii = Counter(min(radius, max(height, width)) for radius in SALIENCY_RADII)
    for radius, repeats in radii.items():
        # The window [p - radius + 1, p + radius + 1) around pixel p, clipped (OpenCV's).
        top, bottom = (ys - radius + 1).clamp(0, height), (ys + radius + 1).clamp(0, height)
        left, right = (xs - radius + 1).clamp(0, width), (xs + radius + 1).clamp(0, width)
        below, above = integral.index_select(1, bottom), integral.index_select(1, top)
        window = (below.index_select(2, right) - above.index_select(2, right)
                  - below.index_select(2, left) + above.index_select(2, left))
        area = (bottom - top).view(-1, 1) * (right - left).view(1, -1)
        surround = (window - gray) / (area - 1).clamp(min=1)
        on += repeats * (gray - surround).clamp(min=0)
        off += repeats * (surround - gray).clamp(min=0)
    peak_on = on.flatten(1).amax(dim=1).clamp(min=1e-12).view(count, 1, 1)
    peak_off = off.flatten(1).amax(dim=1).clamp(min=1e-12).view(count, 1, 1)
    return on / peak_on + off / peak_off


def saliency_peaks(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of each image's saliency peak, (N,) long each; the first in row-major
    order on ties (numpy.argmax's, which OpenMixup's code uses)."""
    saliency = fine_grained_saliency(images)
    flat = saliency.flatten(1).argmax(dim=1)
    width = saliency.shape[-1]
    return flat // width, flat % width


@register_mixer("saliencymix")
class SaliencyMix(MixingBase):
    """A CutMix box per row, centred on its partner's saliency peak."""

    epoch_draws = True

    def draw(self, count, height, width, generator):
        lam = self.draw_lambda(self.current_alpha(), generator, count)
        rows = lam.expand(count) if not lam.dim() else lam
        return {"lam_rows": rows.float().contiguous(), "lam_mean": float(rows.mean()),
                **self.draw_partners(count, generator)}

    def apply(self, images, targets, draws):
        height, width = images.shape[-2:]
        partner_images, partner_targets = self.take_partners(images, targets, draws)
        centre_y, centre_x = saliency_peaks(partner_images)
        boxes = boxes_from_centres(height, width, draws["lam_rows"], centre_y, centre_x)
        lams = boxes_lambda(boxes, height, width)  # the real own share, on the device
        weight = as_rows(lams, targets)
        mixed_targets = targets * weight + partner_targets * (1.0 - weight)
        return MixedBatch(paste_rows(images, partner_images, boxes), mixed_targets,
                          draws["lam_mean"], lams, "saliencymix")
