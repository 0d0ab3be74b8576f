"""models: the standard ResNet-18 / PreAct ResNet-18 with the CIFAR stem, by name."""

from __future__ import annotations

import pytest
import torch

from mixup_bench.models import build_model, model_names, register_model


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet18_cifar_stem_has_the_standard_parameter_count():
    model = build_model("resnet18", 10)
    assert parameters(model) == 11_173_962
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_preact_resnet18_parameter_count_and_preactivation():
    model = build_model("preact_resnet18", 10)
    # kuangliu's PreActResNet18 (11,171,146) plus the final BN (2 x 512).
    assert parameters(model) == 11_171_146 + 1024
    assert type(model.stages[0].blocks[0]).__name__ == "PreActBasic"


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18"])
def test_output_shapes_and_32x32_keeps_4x4_final_map(name):
    model = build_model(name, 100).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape[-2:] == (4, 4)


def test_dropout_before_classifier():
    model = build_model("resnet18", 10, dropout=0.3)
    assert model.drop_rate == 0.3


def test_registry_refuses_duplicates_and_lists_names_on_a_miss():
    assert {"resnet18", "preact_resnet18"} <= set(model_names())
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet18")(lambda num_classes, dropout: None)
    with pytest.raises(ValueError, match="expected one of preact_resnet18, resnet18"):
        build_model("resnet50x", 10)
