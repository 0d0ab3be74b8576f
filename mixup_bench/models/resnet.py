"""ResNet-18 and PreAct ResNet-18 with the CIFAR stem, built from timm.

timm's ImageNet models start with a 7x7 stride-2 conv and a max-pool, which
would shrink a 32x32 image to 8x8 before the first block. The CIFAR stem used
by the Mixup and CutMix papers is one 3x3 stride-1 conv and no pool; we
replace the stem and keep timm's blocks, so the rest is the standard
architecture (He et al. 2016a / 2016b).
"""

from __future__ import annotations

import timm
import torch.nn as nn

from .registry import register_model


def _cifar_stem_conv() -> nn.Conv2d:
    return nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)


@register_model("resnet18")
def resnet18(num_classes: int, dropout: float = 0.0) -> nn.Module:
    """ResNet-18 (basic blocks, post-activation): 11,173,962 parameters for 10 classes."""
    model = timm.create_model("resnet18", num_classes=num_classes, drop_rate=dropout)
    model.conv1 = _cifar_stem_conv()
    model.maxpool = nn.Identity()
    return model


@register_model("preact_resnet18")
def preact_resnet18(num_classes: int, dropout: float = 0.0) -> nn.Module:
    """PreAct ResNet-18 (full pre-activation, final BN-ReLU): 11,172,170 parameters.

    The Mixup authors' code (after kuangliu/pytorch-cifar) omits the final
    BN-ReLU (11,171,146 parameters); He et al.'s design and timm keep it.
    """
    model = timm.create_model("resnetv2_18", num_classes=num_classes, drop_rate=dropout)
    model.stem.conv = _cifar_stem_conv()
    model.stem.pool = nn.Identity()
    return model
