"""SmoothMix (Lee et al., CVPR Workshops 2020, "SmoothMix: a Simple Yet Effective Data
Augmentation to Train Robust Classifiers").

CutMix with a soft mask: a Gaussian blob G (peak 1 at a uniformly drawn
centre, spread sigma) weights the partner, so mixed = (1 - G) * x + G * x',
with no sharp edge for the network to latch onto. The partner's label weight
is the mask's real mean over the image, mean(G), and the row's own label
gets 1 - mean(G): each label gets exactly its image's share of the pixels.

lambda (~ Beta(alpha, alpha), the asked weight of the row's own image) sets
the blob's size: sigma = sqrt((1 - lam) * H * W / (2 pi)), for which an
unclipped blob has mean 1 - lam (its integral is 2 pi sigma^2). Where the
image border cuts the blob off the real mean is smaller, and the targets
follow the real mean, not lambda. The mask is separable, G = g(y) g(x), so
its mean is mean(g(y)) * mean(g(x)), computed exactly on the CPU from the
draws; the device builds G from the drawn centres and sigmas.
lam_per=batch: one blob per batch (as OpenMixup); lam_per=sample: one per
example.

What differs from OpenMixup's code (openmixup/models/augments/smoothmix.py)
and why:
- OpenMixup draws lambda and never uses it: its sigma is drawn from
  U(0.25, 0.5) * H whatever alpha is, so the method's alpha has no effect.
  Here lambda sets sigma, so alpha does what it says.
- OpenMixup mixes img * (1 - G) + img[perm] * G, so G weights the PARTNER,
  then returns lam = mean(G) as the weight of the row's OWN label (y_a):
  the labels get the mask's shares the wrong way round. Here the own label
  gets 1 - mean(G) (tested: each target weight equals its image's share).
- OpenMixup builds the blob by rolling a 2H x 2H grid (the blob wraps around
  the border); here the blob is clipped by the border, as the paper's.
"""

from __future__ import annotations

import math

import torch

from .base import MixingBase, register_mixer
from .batch import MixedBatch
from .ops import as_rows

MIN_SIGMA = 1e-3  # lambda = 1 gives a blob of (numerically) one pixel, not a division by zero


def gaussian_profile(size: int, centre: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """(N, size): exp(-(i - centre)^2 / (2 sigma^2)) along one axis, on centre's device."""
    offset = torch.arange(size, device=centre.device, dtype=sigma.dtype).view(1, -1)
    return torch.exp(-(offset - centre.view(-1, 1)).square() / (2 * sigma.view(-1, 1).square()))


def draw_blobs(lams: torch.Tensor, height: int, width: int, generator: torch.Generator
               ) -> dict[str, torch.Tensor]:
    """Centres (uniform over the pixels) and sigmas of N blobs, and each blob's mean."""
    count = lams.shape[0]
    centre_y = torch.randint(0, height, (count,), generator=generator).double()
    centre_x = torch.randint(0, width, (count,), generator=generator).double()
    sigma = ((1.0 - lams.double()) * height * width / (2 * math.pi)).sqrt().clamp(min=MIN_SIGMA)
    share = (gaussian_profile(height, centre_y, sigma).mean(dim=1)
             * gaussian_profile(width, centre_x, sigma).mean(dim=1))
    return {"blob": torch.stack([centre_y, centre_x, sigma], dim=1).float(),
            "partner_share": share.float()}


@register_mixer("smoothmix")
class SmoothMix(MixingBase):
    epoch_draws = True

    def draw(self, count, height, width, generator):
        lam = self.draw_lambda(self.current_alpha(), generator, count)
        partners = self.draw_partners(count, generator)
        blobs = draw_blobs(lam.reshape(-1), height, width, generator)
        own = 1.0 - blobs["partner_share"]
        if lam.dim():
            return {**partners, **blobs, "lams": own, "lam_mean": float(own.mean())}
        return {**partners, "blob": blobs["blob"].expand(count, -1).contiguous(),
                "lams": own.expand(count).contiguous(), "lam_mean": float(own[0]),
                "per_batch": True}

    def apply(self, images, targets, draws):
        height, width = images.shape[-2:]
        partner_images, partner_targets = self.take_partners(images, targets, draws)
        centre_y, centre_x, sigma = draws["blob"].unbind(1)
        mask = (gaussian_profile(height, centre_y, sigma).unsqueeze(2)
                * gaussian_profile(width, centre_x, sigma).unsqueeze(1)).unsqueeze(1)
        mask = mask.to(images.dtype)
        mixed = images * (1.0 - mask) + partner_images * mask
        weight = as_rows(draws["lams"], targets)
        mixed_targets = targets * weight + partner_targets * (1.0 - weight)
        lams = None if draws.get("per_batch") else draws["lams"]
        return MixedBatch(mixed, mixed_targets, draws["lam_mean"], lams, "smoothmix")
