"""The pixel-space family: Mixup, CutMix, and Mixup-or-CutMix (timm's switch)."""

from __future__ import annotations

import torch

from .base import MixingBase, register_mixer
from .batch import MixedBatch
from .draws import Draws
from .ops import (
    as_rows,
    blend,
    box_lambda,
    boxes_lambda,
    cutmix_box,
    paste,
    paste_per_example,
    random_boxes,
)
from .options import SWITCH_OPTIONS


def lam_draws(lam: torch.Tensor) -> Draws:
    """A drawn lambda as draws: a float with lam_per=batch, the (N,) tensor with lam_per=sample;
    its mean is taken here, on the CPU."""
    if lam.dim():
        return {"lam": lam, "lam_mean": float(lam.mean())}
    return {"lam": float(lam), "lam_mean": float(lam)}


@register_mixer("mixup")
class Mixup(MixingBase):
    epoch_draws = True

    def draw(self, count, height, width, generator):
        lam = self.draw_lambda(self.current_alpha(), generator, count)
        return {**lam_draws(lam), **self.draw_partners(count, generator)}

    def apply(self, images, targets, draws):
        partner_images, partner_targets = self.take_partners(images, targets, draws)
        return blend(images, targets, partner_images, partner_targets, draws["lam"],
                     draws["lam_mean"])


def draw_cutmix(mixer: MixingBase, alpha: float, count: int, height: int, width: int,
                generator: torch.Generator) -> Draws:
    """CutMix's draws: lambda, partners, then a box (per batch) or a box per row (per sample);
    lambda is then the unpasted fraction, computed here on the CPU."""
    lam = mixer.draw_lambda(alpha, generator, count)
    draws = mixer.draw_partners(count, generator)
    if lam.dim():
        boxes = random_boxes(height, width, lam, generator)
        lams = boxes_lambda(boxes, height, width)
        return {**draws, "boxes": boxes, "lams": lams, "lam_mean": float(lams.mean())}
    box = cutmix_box(height, width, float(lam), generator)
    return {**draws, "box": box, "lam_mean": box_lambda(box, height, width)}


def apply_cutmix(mixer: MixingBase, images: torch.Tensor, targets: torch.Tensor,
                 draws: Draws) -> MixedBatch:
    partner_images, partner_targets = mixer.take_partners(images, targets, draws)
    if "boxes" in draws:
        return paste_per_example(images, targets, partner_images, partner_targets,
                                 draws["boxes"], draws["lams"], draws["lam_mean"])
    return paste(images, targets, partner_images, partner_targets, draws["box"])


@register_mixer("cutmix")
class CutMix(MixingBase):
    """With lam_per=sample each example gets its own lambda and box (a batched mask)."""

    epoch_draws = True

    def draw(self, count, height, width, generator):
        return draw_cutmix(self, self.current_alpha(), count, height, width, generator)

    def apply(self, images, targets, draws):
        return apply_cutmix(self, images, targets, draws)


@register_mixer("mixup_cutmix")
class MixupCutMix(MixingBase):
    """CutMix with probability switch_prob, else Mixup (timm's switch_prob).

    `alpha` is the Mixup alpha and aug.cutmix_alpha the CutMix one; an alpha
    schedule scales both by the same factor current_alpha / alpha. With
    lam_per=batch the choice is per batch; with lam_per=sample per example
    (timm's mode="elem"), each example with its branch's lambda.
    """

    accepted = MixingBase.accepted + SWITCH_OPTIONS
    epoch_draws = True

    def draw(self, count, height, width, generator):
        mixup_alpha = self.current_alpha()
        cutmix_alpha = self.options.cutmix_alpha * mixup_alpha / self.alpha
        switch = self.options.switch_prob
        if self.options.lam_per == "batch":
            if bool(torch.rand((), generator=generator) < switch):
                return {"branch": "cutmix",
                        **draw_cutmix(self, cutmix_alpha, count, height, width, generator)}
            lam = float(self.draw_lambda(mixup_alpha, generator, count))
            return {"branch": "mixup", "lam": lam, "lam_mean": lam,
                    **self.draw_partners(count, generator)}
        use_cutmix = torch.rand(count, generator=generator) < switch
        mixup_lam = self.draw_lambda(mixup_alpha, generator, count)
        cutmix_lam = self.draw_lambda(cutmix_alpha, generator, count)
        partners = self.draw_partners(count, generator)
        boxes = random_boxes(height, width, cutmix_lam, generator)
        cutmix_lams = boxes_lambda(boxes, height, width)
        lams = torch.where(use_cutmix, cutmix_lams, mixup_lam)
        return {"branch": "both", "use_cutmix": use_cutmix, "mixup_lam": mixup_lam,
                "boxes": boxes, "cutmix_lams": cutmix_lams, "lams": lams,
                "lam_mean": float(lams.mean()), **partners}

    def apply(self, images, targets, draws):
        if draws["branch"] == "cutmix":
            return apply_cutmix(self, images, targets, draws)
        partner_images, partner_targets = self.take_partners(images, targets, draws)
        if draws["branch"] == "mixup":
            return blend(images, targets, partner_images, partner_targets, draws["lam"])
        use_cutmix, lam_mean = draws["use_cutmix"], draws["lam_mean"]
        blended = blend(images, targets, partner_images, partner_targets, draws["mixup_lam"],
                        lam_mean)
        pasted = paste_per_example(images, targets, partner_images, partner_targets,
                                   draws["boxes"], draws["cutmix_lams"], lam_mean)
        mixed = torch.where(as_rows(use_cutmix, images, torch.bool), pasted.images, blended.images)
        mixed_targets = torch.where(as_rows(use_cutmix, targets, torch.bool), pasted.targets,
                                    blended.targets)
        return MixedBatch(mixed, mixed_targets, lam_mean, draws["lams"], "mixup_cutmix")
