"""PuzzleMix (Kim, Choo and Song, ICML 2020), guided by the model being trained.

Per mixed batch: the input-gradient saliency of the batch (one extra
forward and backward, guided.py), a block count b drawn from aug.blocks
(the paper's 2, 4, 8, 16), the block-wise labelling of graphcut.py (which
share of each block is the own image: 0, 1/2 or 1 with aug.n_labels=3),
then with aug.transport=true the transport step of transport.py at blocks of
min(aug.t_size, 32/b) pixels, which moves each image's salient blocks to
where the mask shows that image. The mixed image is mask * own' + (1 - mask)
* partner', and each row's target weights its own label by the mask's mean:
exactly the own image's share of the pixels (transport only moves blocks
within an image). MixedBatch.lams holds these per-row weights with either
lam_per: they differ per row even when lambda is drawn once per batch. Partners are a
permutation of the batch (the partner's saliency is then the batch's own, as in the paper).

Defaults are the paper's CIFAR settings (its README): alpha 1, n_labels 3,
beta 1.2, gamma 0.5, eta 0.2, neigh_size 4, transport with t_eps 0.8 and
t_size 4; clean_lam (training on the clean batch too) and the adversarial
noise of the paper's later sections are not part of this method here.

What differs from the paper's code (snu-mllab/PuzzleMix) and OpenMixup's port:
- the graph cut is solved per row with GCO's alpha-beta swap, as there, but
  on integer costs this module scales (see graphcut.py); the edge weights are
  clamped at 0; the transport keeps a block in place where no block won the
  place, and lets only blocks that chose a place compete for it (see
  transport.py): every pixel of the mix is then a pixel of one of the two
  images and the target weights are the real shares;
- lambda, partners and block counts come from the seeded CPU mixing
  generator, an epoch at once (draws.py), not NumPy's global generator;
- pixel differences for the data smoothness are in [0, 1] units, undoing
  the loader's normalisation (std from the bound loader; 1 outside training).
Cost: besides the extra forward/backward, the graph cut runs on the CPU, so a
mixed batch copies its costs to the host and the labels back (a host
synchronisation per step, which every PuzzleMix implementation has).
"""

from __future__ import annotations

import importlib.util
import math
from typing import Any

import torch
import torch.nn.functional as F

from .base import register_mixer
from .batch import MixedBatch
from .graphcut import labelling_costs, own_share_masks
from .guided import ModelGuide, ModelGuidedMixer
from .options import OptionError
from .transport import move_blocks, transport_sources

PUZZLE_DEFAULTS = {"blocks": (2, 4, 8, 16), "n_labels": 3, "beta": 1.2, "gamma": 0.5,
                   "eta": 0.2, "neigh_size": 4, "transport": True, "t_eps": 0.8, "t_size": 4}


def _parse(key: str, value: Any) -> Any:
    """One PuzzleMix option, checked; OptionError with one line otherwise."""
    def bad(expected: str) -> OptionError:
        return OptionError(f"aug.{key}={value!r}: expected {expected}")

    if key == "blocks":
        if (not isinstance(value, (list, tuple)) or not value
                or any(type(b) is not int or b < 2 or b & (b - 1) for b in value)):
            raise bad("a non-empty list of powers of 2 >= 2")
        return tuple(value)
    if key == "transport":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "n_labels":
        if type(value) is not int or not 2 <= value <= 8:
            raise bad("an integer in [2, 8]")
        return value
    if key in ("neigh_size", "t_size"):  # pixels; powers of 2 divide every block side
        if type(value) is not int or value not in (1, 2, 4, 8):
            raise bad("1, 2, 4 or 8")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or value < 0:
        raise bad("a number >= 0")
    return float(value)


@register_mixer("puzzlemix")
class PuzzleMix(ModelGuidedMixer):
    """aug.blocks, n_labels, beta, gamma, eta, neigh_size, transport, t_eps, t_size."""

    accepted = ModelGuidedMixer.accepted + tuple(PUZZLE_DEFAULTS)
    extra_passes = "1 forward + 1 backward (input saliency), a CPU graph cut"

    def __init__(self, num_classes: int, alpha: float | None = None, **options: Any) -> None:
        own = {key: options.pop(key) for key in PUZZLE_DEFAULTS if key in options}
        super().__init__(num_classes, alpha, **options)
        self.settings = {key: _parse(key, own.get(key, default))
                         for key, default in PUZZLE_DEFAULTS.items()}
        if self.options.partner != "permutation":
            raise OptionError(f"aug.partner={self.options.partner}: expected permutation "
                              "(puzzlemix mixes each image with another of its batch)")
        if importlib.util.find_spec("gco") is None:
            raise OptionError("aug=puzzlemix: expected gco-wrapper installed (its graph cut); "
                              "pip install 'mixup-bench[puzzlemix]'")
        self.pixel_scale: torch.Tensor | None = None

    def summary(self) -> dict[str, Any]:
        settings = {key: list(value) if isinstance(value, tuple) else value
                    for key, value in self.settings.items()}
        return {**super().summary(), **settings}

    def bind(self, loader: Any) -> None:
        super().bind(loader)
        std = getattr(loader, "std", None)  # DeviceLoader: the normalisation's std * 255
        self.pixel_scale = None if std is None else std / 255.0

    def draw(self, count, height, width, generator):
        blocks = self.settings["blocks"]
        if any(height % b or width % b or height != width for b in blocks):
            raise OptionError(f"aug.blocks={list(blocks)}: expected divisors of the square "
                              f"image size {height}x{width}")
        lam = self.draw_lambda(self.current_alpha(), generator, count)
        chosen = blocks[int(torch.randint(len(blocks), (), generator=generator))]
        return {"partner": torch.randperm(count, generator=generator),
                "lam": lam.expand(count).contiguous(), "blocks": chosen}

    def mix_with_model(self, images, targets, draws, guide: ModelGuide) -> MixedBatch:
        settings, partner, blocks = self.settings, draws["partner"], draws["blocks"]
        size = images.shape[-1]
        saliency = guide.input_saliency(images, targets)
        scale = 1.0 if self.pixel_scale is None else self.pixel_scale.to(images.device)
        costs = labelling_costs(saliency, images.detach() * scale, partner, draws["lam"], blocks,
                                settings["n_labels"], settings["beta"], settings["gamma"],
                                settings["eta"], settings["neigh_size"])
        shares = own_share_masks(costs)  # (N, b, b) on the CPU: the graph cut's labels
        lams = shares.flatten(1).mean(1)  # the own share of each row (equal blocks)
        share = shares.to(images.device)
        own, other = images, images[partner]
        if settings["transport"]:
            moved = size // min(settings["t_size"], size // blocks)
            fine = share.repeat_interleave(moved // blocks, 1).repeat_interleave(moved // blocks, 2)
            block_saliency = F.avg_pool2d(saliency.unsqueeze(1), size // moved).flatten(1)
            block_saliency = block_saliency / block_saliency.sum(1, keepdim=True).clamp_min(1e-12)
            eps = settings["t_eps"]
            own = move_blocks(own, transport_sources(fine.flatten(1) > 0, block_saliency, eps),
                              moved)
            other = move_blocks(other, transport_sources(fine.flatten(1) < 1,
                                                         block_saliency[partner], eps), moved)
        pixels = share.repeat_interleave(size // blocks, 1).repeat_interleave(size // blocks, 2)
        weight = pixels.unsqueeze(1).to(images.dtype)
        mixed = own * weight + other * (1.0 - weight)
        rows = lams.to(targets.device, targets.dtype).view(-1, 1)
        mixed_targets = targets * rows + targets[partner] * (1.0 - rows)
        return MixedBatch(mixed, mixed_targets, float(lams.mean()), lams.to(images.device),
                          "puzzlemix")
