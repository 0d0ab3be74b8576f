"""Manifold Mixup (Verma et al., ICML 2019): mix hidden features instead of pixels.

Per batch a layer k is drawn from aug.layers (0: the input, 1: after stage 1,
2: after stage 2, as in the paper's ResNet experiments); inputs stay as they
are and a forward hook on stage k mixes its output with the partners'
output, lam * h + (1 - lam) * h[partner]. Targets are mixed as in Mixup. The
hook is installed only for the forward pass of that batch, through the
MixedBatch.forward_context the trainer enters, so the trainer has no branch
for this method.

torch.compile does not see forward hooks added after its first call (Dynamo
skips guards on module hooks), so a compiled network would train on unmixed
features against mixed targets: the trainer refuses trainer.compile=true with
this mixer (`mixes_inside_network`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch

from ..models import mixing_stages
from .base import MixingBase, register_mixer
from .batch import MixedBatch
from .mixup import lam_draws
from .ops import blend, random_partner
from .options import OptionError

MANIFOLD_LAYERS = (0, 1, 2)


@contextmanager
def mix_after_stage(model: torch.nn.Module, stage: int, partner: torch.Tensor,
                    lam: float | torch.Tensor) -> Iterator[None]:
    """While active, stage `stage` (1-based) of `model` returns mixed features."""
    module = mixing_stages(model)[stage - 1]

    def mix(_module: torch.nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        weight = lam if isinstance(lam, float) else lam.to(output.device, output.dtype).view(
            -1, *([1] * (output.dim() - 1)))
        return output * weight + output[partner] * (1.0 - weight)

    handle = module.register_forward_hook(mix)
    try:
        yield
    finally:
        handle.remove()


@register_mixer("manifold_mixup")
class ManifoldMixup(MixingBase):
    """aug.layers: the layers to draw from (default 0, 1, 2); partners within the batch."""

    accepted = MixingBase.accepted + ("layers",)
    epoch_draws = True
    mixes_inside_network = True

    def __init__(self, num_classes: int, alpha: float | None = None,
                 layers: Any = MANIFOLD_LAYERS, **options: Any) -> None:
        super().__init__(num_classes, alpha, **options)
        if (not isinstance(layers, (list, tuple)) or not layers
                or any(type(layer) is not int or layer not in MANIFOLD_LAYERS
                       for layer in layers)):  # type(): neither True nor 1.0 passes as 1
            raise OptionError(f"aug.layers={layers!r}: expected a non-empty list drawn from "
                              "0 (input), 1 and 2 (after stages 1 and 2)")
        if self.options.partner != "permutation":
            raise OptionError(f"aug.partner={self.options.partner}: expected permutation "
                              "(manifold_mixup mixes hidden features within the batch)")
        self.layers = tuple(int(layer) for layer in layers)

    def summary(self) -> dict[str, Any]:
        return {**super().summary(), "layers": list(self.layers)}

    def draw(self, count, height, width, generator):
        lam = self.draw_lambda(self.current_alpha(), generator, count)
        layer = self.layers[int(torch.randint(len(self.layers), (), generator=generator))]
        return {**lam_draws(lam), "layer": layer, "partner": random_partner(count, generator)}

    def apply(self, images, targets, draws):
        weight, partner, layer = draws["lam"], draws["partner"], draws["layer"]
        if layer == 0:
            batch = blend(images, targets, images[partner], targets[partner], weight,
                          draws["lam_mean"])
            batch.method = "manifold_mixup:0"
            return batch
        rows = weight if isinstance(weight, float) else weight.to(targets).view(-1, 1)
        mixed_targets = targets * rows + targets[partner] * (1.0 - rows)
        return MixedBatch(images, mixed_targets, draws["lam_mean"],
                          None if isinstance(weight, float) else weight,
                          f"manifold_mixup:{layer}",
                          forward_context=lambda model: mix_after_stage(model, layer, partner,
                                                                        weight))
