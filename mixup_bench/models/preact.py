"""The Mixup authors' PreAct ResNet-18 (facebookresearch/mixup-cifar10, `ResNet18()`).

Their network (after kuangliu/pytorch-cifar) differs from He et al.'s
pre-activation ResNet and from timm's `resnetv2_18` in three ways, all kept
here so that `experiment=paper` trains the network the paper's numbers came
from:

- the stem is conv3x3(3 -> 64)-BN-ReLU (kuangliu's has no stem BN);
- every block adds its shortcut to the PRE-ACTIVATED input, relu(bn1(x)),
  through a 1x1 conv where stride or width change and as it is otherwise
  (He et al. and kuangliu add x itself where the shortcut is the identity);
- there is no final BN-ReLU: layer4's output goes straight to the 4x4
  average pool (here adaptive, the same on 32x32 inputs) and the classifier.

11,171,274 parameters for 10 classes (kuangliu's 11,171,146 plus the stem
BN's 2 x 64). The module and parameter names (conv1, bn1, layer1..layer4,
linear) are the reference code's, so its state_dict keys match.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .registry import register_model

WIDTHS = (64, 128, 256, 512)
BLOCKS = (2, 2, 2, 2)


def _conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=stride, padding=1,
                     bias=False)


class PreActBlock(nn.Module):
    """BN-ReLU, then conv3x3-BN-ReLU-conv3x3 plus the shortcut of the pre-activated input."""

    def __init__(self, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = _conv3x3(in_channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3x3(channels, channels)
        self.shortcut = nn.Sequential()  # the identity, as in the reference code
        if stride != 1 or in_channels != channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, channels, kernel_size=1, stride=stride, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(x))
        shortcut = self.shortcut(out)
        out = self.conv2(F.relu(self.bn2(self.conv1(out))))
        return out + shortcut


class PreActResNet(nn.Module):
    """Stem conv-BN-ReLU, four stages of PreAct blocks, average pool, dropout, linear."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.0,
                 blocks: tuple[int, ...] = BLOCKS) -> None:
        super().__init__()
        self.drop_rate = dropout
        self.conv1 = _conv3x3(3, WIDTHS[0])
        self.bn1 = nn.BatchNorm2d(WIDTHS[0])
        in_channels = WIDTHS[0]
        for index, (width, count) in enumerate(zip(WIDTHS, blocks, strict=True), start=1):
            stride = 1 if index == 1 else 2
            layers = []
            for position in range(count):
                layers.append(PreActBlock(in_channels, width, stride if position == 0 else 1))
                in_channels = width
            setattr(self, f"layer{index}", nn.Sequential(*layers))
        self.dropout = nn.Dropout(dropout)
        self.linear = nn.Linear(WIDTHS[-1], num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last stage's feature map (4x4 for a 32x32 image), no BN-ReLU after it."""
        x = F.relu(self.bn1(self.conv1(x)))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(features, 1).flatten(1)
        return self.linear(self.dropout(pooled))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def zero_init_last(self) -> None:
        """Zero each block's last conv weight, so every residual branch starts at zero.

        PreAct blocks end with a conv, not a BN, so this is the conv (as timm
        does for its PreAct basic block); the reference code does not do it.
        """
        for module in self.modules():
            if isinstance(module, PreActBlock):
                nn.init.zeros_(module.conv2.weight)


@register_model("preact_resnet18", init={"weights": "pytorch default (as the reference code)",
                                         "stem": "pytorch default",
                                         "zero_init_last": "each block's conv2 weight"})
def preact_resnet18(num_classes: int, dropout: float = 0.0, *,
                    zero_init_last: bool = False) -> nn.Module:
    """The Mixup authors' PreAct ResNet-18: 11,171,274 parameters for 10 classes.

    PyTorch's default initialisation, as in the reference code. zero_init_last
    zeroes each block's last conv weight (PreAct blocks end with a conv; see
    PreActResNet.zero_init_last).
    """
    model = PreActResNet(num_classes, dropout)
    if zero_init_last:
        model.zero_init_last()
    return model
