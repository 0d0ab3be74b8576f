"""ResNet-18 and timm's PreAct ResNet-18 with the CIFAR stem, built from timm.

timm's ImageNet models start with a 7x7 stride-2 conv and a max-pool, which
would shrink a 32x32 image to 8x8 before the first block. The CIFAR stem used
by the Mixup and CutMix papers is one 3x3 stride-1 conv and no pool; we
replace the stem and keep timm's blocks, so the rest is the standard
architecture (He et al. 2016a / 2016b). The new stem conv is initialised as
timm initialises its other convs (kaiming normal, fan_out, ReLU gain), so the
whole network starts from timm's scheme. The Mixup authors' own PreAct
ResNet-18 is in preact.py.
"""

from __future__ import annotations

import timm
import torch.nn as nn

from .registry import register_model

_TIMM_INIT = {"weights": "timm (convs kaiming_normal_ fan_out relu, BN 1/0)",
              "stem": "kaiming_normal_ fan_out relu, like the other convs"}


def _cifar_stem_conv() -> nn.Conv2d:
    conv = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


@register_model("resnet18", init={**_TIMM_INIT,
                                  "zero_init_last": "each block's bn2 weight (timm's option)"})
def resnet18(num_classes: int, dropout: float = 0.0, *,
             zero_init_last: bool = False) -> nn.Module:
    """ResNet-18 (basic blocks, post-activation): 11,173,962 parameters for 10 classes.

    zero_init_last is timm's option: each block's last BN weight starts at 0.
    """
    model = timm.create_model("resnet18", num_classes=num_classes, drop_rate=dropout,
                              zero_init_last=zero_init_last)
    model.conv1 = _cifar_stem_conv()
    model.maxpool = nn.Identity()
    return model


@register_model("preact_resnet18_timm", init={
    **_TIMM_INIT, "zero_init_last": "each block's conv2 weight (timm's option)"})
def preact_resnet18_timm(num_classes: int, dropout: float = 0.0, *,
                         zero_init_last: bool = False) -> nn.Module:
    """timm's PreAct ResNet-18 (resnetv2_18): 11,172,170 parameters for 10 classes.

    He et al.'s full pre-activation design as timm builds it: no BN after the
    stem conv, identity shortcuts that add the block's input itself, and a
    final BN-ReLU before the pool. NOT the Mixup authors' network
    (`preact_resnet18`, 11,171,274 parameters: stem BN, no final BN-ReLU);
    kept for runs made with it. zero_init_last is timm's option (each
    block's last conv weight starts at 0).
    """
    model = timm.create_model("resnetv2_18", num_classes=num_classes, drop_rate=dropout,
                              zero_init_last=zero_init_last)
    model.stem.conv = _cifar_stem_conv()
    model.stem.pool = nn.Identity()
    return model
