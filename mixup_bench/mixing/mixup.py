"""The pixel-space family: Mixup, CutMix, and Mixup-or-CutMix (timm's switch)."""

from __future__ import annotations

import torch

from .base import MixingBase, register_mixer
from .batch import MixedBatch
from .ops import as_rows, blend, cutmix_box, paste, paste_per_example, random_boxes
from .options import SWITCH_OPTIONS


@register_mixer("mixup")
class Mixup(MixingBase):
    def mix(self, images, targets, generator):
        lam = self.draw_lambda(self.current_alpha(), generator, images.shape[0])
        partner_images, partner_targets = self.partners(images, targets, generator)
        return blend(images, targets, partner_images, partner_targets,
                     lam if lam.dim() else float(lam))


def cutmix_branch(mixer: MixingBase, alpha: float, images: torch.Tensor, targets: torch.Tensor,
                   generator: torch.Generator) -> MixedBatch:
    lam = mixer.draw_lambda(alpha, generator, images.shape[0])
    partner_images, partner_targets = mixer.partners(images, targets, generator)
    height, width = images.shape[-2:]
    if lam.dim():
        boxes = random_boxes(height, width, lam, generator)
        return paste_per_example(images, targets, partner_images, partner_targets, boxes)
    box = cutmix_box(height, width, float(lam), generator)
    return paste(images, targets, partner_images, partner_targets, box)


@register_mixer("cutmix")
class CutMix(MixingBase):
    """With lam_per=sample each example gets its own lambda and box (a batched mask)."""

    def mix(self, images, targets, generator):
        return cutmix_branch(self, self.current_alpha(), images, targets, generator)


@register_mixer("mixup_cutmix")
class MixupCutMix(MixingBase):
    """CutMix with probability switch_prob, else Mixup (timm's switch_prob).

    `alpha` is the Mixup alpha and aug.cutmix_alpha the CutMix one; an alpha
    schedule scales both by the same factor current_alpha / alpha. With
    lam_per=batch the choice is per batch; with lam_per=sample per example
    (timm's mode="elem"), each example with its branch's lambda.
    """

    accepted = MixingBase.accepted + SWITCH_OPTIONS

    def mix(self, images, targets, generator):
        mixup_alpha = self.current_alpha()
        cutmix_alpha = self.options.cutmix_alpha * mixup_alpha / self.alpha
        switch = self.options.switch_prob
        if self.options.lam_per == "batch":
            if bool(torch.rand((), generator=generator) < switch):
                return cutmix_branch(self, cutmix_alpha, images, targets, generator)
            lam = float(self.draw_lambda(mixup_alpha, generator, images.shape[0]))
            partner_images, partner_targets = self.partners(images, targets, generator)
            return blend(images, targets, partner_images, partner_targets, lam)
        count = images.shape[0]
        use_cutmix = torch.rand(count, generator=generator) < switch
        mixup_lam = self.draw_lambda(mixup_alpha, generator, count)
        cutmix_lam = self.draw_lambda(cutmix_alpha, generator, count)
        partner_images, partner_targets = self.partners(images, targets, generator)
        boxes = random_boxes(images.shape[-2], images.shape[-1], cutmix_lam, generator)
        blended = blend(images, targets, partner_images, partner_targets, mixup_lam)
        pasted = paste_per_example(images, targets, partner_images, partner_targets, boxes)
        lams = torch.where(use_cutmix, pasted.lams, blended.lams)
        mixed = torch.where(as_rows(use_cutmix, images, torch.bool), pasted.images, blended.images)
        mixed_targets = torch.where(as_rows(use_cutmix, targets, torch.bool), pasted.targets,
                                    blended.targets)
        return MixedBatch(mixed, mixed_targets, float(lams.mean()), lams, "mixup_cutmix")
