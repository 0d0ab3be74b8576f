"""Model-guided mixing: the one interface through which a mixer gets the network being trained.

AttentiveMix and PuzzleMix choose what to paste by looking at the current
model (its last stage's activations, its input gradients). The trainer gives
every mixer a `ModelGuide` once per epoch through `Mixer.use_model` (a no-op
for the others), so it has no branch per method; a `ModelGuidedMixer` then
mixes with `mix_with_model(images, targets, draws, guide)`, where `guide`
runs the extra passes.

The extra passes leave training untouched:
- no weight gradient: features run under no_grad; saliency takes
  torch.autograd.grad with respect to the input only, so no parameter's
  .grad is written;
- no BatchNorm running statistics: during an extra pass every BatchNorm
  layer has track_running_stats switched off (and back on after), so it
  normalises with the batch's statistics, as in the training forward,
  without updating running_mean, running_var or num_batches_tracked
  (tested). model.eval() would instead normalise with the running
  statistics, which early in training describe another network;
- they run on the plain module, never torch.compile's wrapper (the guide is
  given `model._orig_mod`): toggling a BatchNorm flag between compiled calls
  would make Dynamo recompile, so with trainer.compile=true the training
  forward stays compiled and the extra pass runs eagerly.
Dropout in the network (model.dropout > 0) does draw in the extra pass, as
in the training forward; the default dropout is 0.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import torch
from torch import nn

from .base import MixingBase
from .batch import MixedBatch
from .draws import Draws
from .ops import soft_target_cross_entropy


@contextmanager
def frozen_batchnorm_statistics(model: nn.Module) -> Iterator[None]:
    """While active, BatchNorm layers in train mode use batch statistics and update nothing."""
    layers = [module for module in model.modules()
              if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats]
    for layer in layers:
        layer.track_running_stats = False
    try:
        yield
    finally:
        for layer in layers:
            layer.track_running_stats = True


def plain_module(model: nn.Module) -> nn.Module:
    """The module itself when `model` is torch.compile's wrapper (OptimizedModule)."""
    return getattr(model, "_orig_mod", model)


class ModelGuide:
    """The network being trained, as a model-guided mixer sees it: the extra passes it runs.

    `autocast` is the training forward's autocast context factory (Runtime.autocast),
    so the extra pass runs in the precision the training forward does.
    """

    def __init__(self, model: nn.Module,
                 autocast: Callable[[], AbstractContextManager] = nullcontext) -> None:
        self.model = plain_module(model)
        self.autocast = autocast
        self.passes = 0  # extra forward passes run so far (the bench reports them)

    def feature_maps(self, images: torch.Tensor) -> torch.Tensor:
        """(N, C, h, w) float: the last stage's activation maps of `images`, without gradients."""
        if not hasattr(self.model, "forward_features"):
            raise ValueError(f"{type(self.model).__name__}: no forward_features (the last "
                             "stage's feature map); model-guided mixing needs a ResNet")
        self.passes += 1
        with torch.no_grad(), frozen_batchnorm_statistics(self.model), self.autocast():
            return self.model.forward_features(images).float()

    def input_saliency(self, images: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """(N, H, W) float: |d loss / d input|, the root mean square over channels.

        One forward and one backward of the soft-target loss (summed over the batch, so
        each row's map is its own loss's gradient); parameters get no gradient.
        """
        self.passes += 1
        inputs = images.detach().requires_grad_(True)
        with torch.enable_grad(), frozen_batchnorm_statistics(self.model):
            with self.autocast():
                logits = self.model(inputs)
            loss = soft_target_cross_entropy(logits.float(), targets) * images.shape[0]
            (gradient,) = torch.autograd.grad(loss, inputs)
        return gradient.float().square().mean(dim=1).sqrt()


class ModelGuidedMixer(MixingBase):
    """A mixing method whose mix depends on the network being trained.

    Draws are made as for every epoch_draws mixer (on the CPU, an epoch at once);
    `mix_with_model` does the device work with the guide's extra passes.
    """

    epoch_draws = True
    extra_passes = "forward"  # what one mixed batch costs beyond training: docs and bench

    def __init__(self, num_classes: int, alpha: float | None = None, **options: Any) -> None:
        super().__init__(num_classes, alpha, **options)
        self.guide: ModelGuide | None = None

    def use_model(self, guide: ModelGuide) -> None:
        self.guide = guide

    def apply(self, images: torch.Tensor, targets: torch.Tensor, draws: Draws) -> MixedBatch:
        if self.guide is None:
            raise RuntimeError(f"aug={self.name}: call mixer.use_model(ModelGuide(model)) with "
                               "the network being trained first")
        return self.mix_with_model(images, targets, draws, self.guide)

    def mix_with_model(self, images: torch.Tensor, targets: torch.Tensor, draws: Draws,
                       guide: ModelGuide) -> MixedBatch:
        """Mix with `draws` on the images' device, looking at the model through `guide`."""
        raise NotImplementedError
