"""FMix (Harris et al. 2020, "FMix: Enhancing Mixed Sample Data Augmentation").

CutMix with a free-form mask: a grey-scale image of low-frequency noise
(complex Gaussian noise in the Fourier domain, each frequency f weighted by
1 / max(f, 1/max(H, W)) ** decay_power, back through an inverse FFT) is
thresholded so that its top round(lam * H * W) pixels keep the row's own
image and the rest come from the partner. lam ~ Beta(alpha, alpha) is the
asked fraction; the lambda reported, and used for the targets, is the mask's
real mean (round(lam * H * W) / (H * W)). A larger decay_power gives smoother,
blob-like masks (the paper uses 3).

The noise and the masks are made on the CPU from the mixing generator (one
mask per example with lam_per=sample, one for the batch with lam_per=batch),
so they are identical on every device. In a training loop an epoch's masks
are drawn at its first step and copied to the device at once (base.py,
draws.py); a step only mixes, with no copy and no synchronisation.

What differs from OpenMixup's code (openmixup/models/augments/fmix.py) and
why: OpenMixup draws the mask with NumPy's global generator and copies it to
the GPU every step; here every draw comes from the seeded mixing generator
and the copy is made once per epoch. OpenMixup's mask is one per batch; with
lam_per=sample here each example gets its own.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from .base import MixingBase, register_mixer
from .batch import MixedBatch
from .ops import as_rows
from .options import OptionError

DEFAULT_DECAY_POWER = 3.0


def spectrum_weights(height: int, width: int, decay_power: float) -> torch.Tensor:
    """(H, W // 2 + 1) weights 1 / max(f, 1 / max(H, W)) ** decay_power of rfft2's frequencies."""
    rows = torch.fft.fftfreq(height, dtype=torch.float64).view(-1, 1)
    cols = torch.fft.rfftfreq(width, dtype=torch.float64).view(1, -1)
    freqs = (rows.square() + cols.square()).sqrt()
    return freqs.clamp(min=1.0 / max(height, width)).pow(-decay_power)


def low_frequency_noise(count: int, height: int, width: int, decay_power: float,
                        generator: torch.Generator) -> torch.Tensor:
    """(count, H, W) real noise with a 1 / f ** decay_power spectrum, drawn on the CPU."""
    spectrum = torch.randn((count, height, width // 2 + 1, 2), generator=generator,
                           dtype=torch.float64)
    weights = spectrum_weights(height, width, decay_power)
    spectrum = torch.complex(spectrum[..., 0], spectrum[..., 1]) * weights
    return torch.fft.irfft2(spectrum, s=(height, width))


def fmix_masks(lams: torch.Tensor, height: int, width: int, decay_power: float,
               generator: torch.Generator) -> torch.Tensor:
    """(N, H, W) bool masks, True on each row's top round(lams[i] * H * W) noise pixels."""
    count, pixels = lams.shape[0], height * width
    noise = low_frequency_noise(count, height, width, decay_power, generator).view(count, pixels)
    kept = (lams.double() * pixels).round().long().clamp(0, pixels)
    order = torch.argsort(noise, dim=1, descending=True, stable=True)
    keep = torch.arange(pixels).view(1, -1) < kept.view(-1, 1)
    masks = torch.zeros((count, pixels), dtype=torch.bool).scatter_(1, order, keep)
    return masks.view(count, height, width)


def parse_decay_power(value: Any) -> float:
    if (isinstance(value, bool) or not isinstance(value, (int, float))
            or not math.isfinite(value) or value <= 0):
        raise OptionError(f"aug.decay_power={value!r}: expected a number > 0")
    return float(value)


@register_mixer("fmix")
class FMix(MixingBase):
    """aug.decay_power: the spectrum's decay (> 0, default 3: the FMix paper's)."""

    accepted = MixingBase.accepted + ("decay_power",)
    epoch_draws = True

    def __init__(self, num_classes: int, alpha: float | None = None,
                 decay_power: Any = DEFAULT_DECAY_POWER, **options: Any) -> None:
        super().__init__(num_classes, alpha, **options)
        self.decay_power = parse_decay_power(decay_power)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "decay_power": self.decay_power}

    def draw(self, count, height, width, generator):
        lam = self.draw_lambda(self.current_alpha(), generator, count)
        partners = self.draw_partners(count, generator)
        masks = fmix_masks(lam.reshape(-1), height, width, self.decay_power, generator)
        lams = masks.view(masks.shape[0], -1).double().mean(dim=1).float()  # the real fraction
        if lam.dim():
            return {**partners, "masks": masks, "lams": lams, "lam_mean": float(lams.mean())}
        return {**partners, "masks": masks, "lam": float(lams[0]), "lam_mean": float(lams[0])}

    def apply(self, images, targets, draws):
        partner_images, partner_targets = self.take_partners(images, targets, draws)
        mixed = torch.where(draws["masks"].unsqueeze(1), images, partner_images)
        per_example = "lams" in draws
        weight = as_rows(draws["lams"], targets) if per_example else draws["lam"]
        mixed_targets = targets * weight + partner_targets * (1.0 - weight)
        return MixedBatch(mixed, mixed_targets, draws["lam_mean"],
                          draws["lams"] if per_example else None, "fmix")
