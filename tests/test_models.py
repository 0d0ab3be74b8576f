"""models: ResNet-18, the Mixup authors' PreAct ResNet-18 and timm's, by name; their init."""

from __future__ import annotations

import pytest
import torch

from mixup_bench.models import (
    build_model,
    init_record,
    mixing_stages,
    model_names,
    register_model,
)


def parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_resnet18_cifar_stem_has_the_standard_parameter_count():
    model = build_model("resnet18", 10)
    assert parameters(model) == 11_173_962
    assert model.conv1.kernel_size == (3, 3) and model.conv1.stride == (1, 1)
    assert isinstance(model.maxpool, torch.nn.Identity)


def test_preact_resnet18_timm_parameter_count_and_preactivation():
    model = build_model("preact_resnet18_timm", 10)
    # kuangliu's PreActResNet18 (11,171,146) plus the final BN (2 x 512).
    assert parameters(model) == 11_171_146 + 1024
    assert type(model.stages[0].blocks[0]).__name__ == "PreActBasic"


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "preact_resnet18_timm"])
def test_output_shapes_and_32x32_keeps_4x4_final_map(name):
    model = build_model(name, 100).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    assert model.forward_features(torch.randn(1, 3, 32, 32)).shape[-2:] == (4, 4)


def classifier_input(model: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    """What the classifier (the last layer: linear, or timm ResNetV2's 1x1 convolution)
    receives for `images`."""
    classifier = [module for module in model.modules()
                  if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d))][-1]
    seen = []
    handle = classifier.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    with torch.no_grad():
        model(images)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18", "preact_resnet18_timm"])
def test_dropout_acts_on_the_classifier_input_in_training_only(name):
    """model.dropout=p zeroes a fraction p of the pooled features the classifier reads, and
    scales the rest by 1/(1-p), in training only; everything before it is unchanged."""
    torch.manual_seed(0)
    model = build_model(name, 10, dropout=0.5)
    images = torch.randn(4, 3, 32, 32)
    model.eval()  # the pooled features, with nothing dropped
    pooled = classifier_input(model, images)
    assert torch.equal(classifier_input(model, images), pooled)  # eval: no dropout
    model.train()
    for module in model.modules():  # batch statistics aside, so the features stay the same
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    dropped = classifier_input(model, images)
    kept = dropped != 0
    live = pooled != 0
    assert torch.allclose(dropped[kept], pooled[kept] / 0.5)  # inverted dropout, same features
    fraction = 1 - (kept & live).sum().item() / live.sum().item()
    assert 0.4 < fraction < 0.6, fraction  # of 2,048 features, p = 0.5
    assert not torch.equal(classifier_input(model, images), dropped)  # a new mask each step
    still = build_model(name, 10, dropout=0.0)
    still.load_state_dict(model.state_dict())
    still.train()
    for module in still.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.eval()
    assert torch.equal(classifier_input(still, images), pooled)


def test_registry_refuses_duplicates_and_lists_names_on_a_miss():
    assert {"resnet18", "preact_resnet18", "preact_resnet18_timm"} <= set(model_names())
    with pytest.raises(ValueError, match="already registered"):
        register_model("resnet18")(lambda num_classes, dropout: None)
    with pytest.raises(ValueError, match="expected one of preact_resnet18, "
                                         "preact_resnet18_timm, resnet18"):
        build_model("resnet50x", 10)


# --- the Mixup authors' PreAct ResNet-18 ---------------------------------------------------


class ReferencePreActResNet18(torch.nn.Module):
    """The network of the Mixup paper's code, written out from its description.

    Stem: conv3x3(3 -> 64), BN, ReLU. Four stages of two blocks, widths 64,
    128, 256, 512, strides 1, 2, 2, 2. A block: a = relu(bn(x)); the branch is
    conv3x3(a) -> bn -> relu -> conv3x3; the shortcut is a itself, or a 1x1
    conv of a where the stride or width change; out = branch + shortcut. No
    BN-ReLU after the last stage: 4x4 average pool, then a linear layer.
    Parameters are created in the order the reference code creates them
    (stem conv, stem BN; per block bn1, conv1, bn2, conv2, shortcut conv;
    linear), so weights copy over by position.
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        nn = torch.nn
        self.stem_conv = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.stem_bn = nn.BatchNorm2d(64)
        self.blocks = nn.ModuleList()
        self.strides = []
        in_width = 64
        for width, first_stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            for stride in (first_stride, 1):
                block = nn.ModuleList([
                    nn.BatchNorm2d(in_width), nn.Conv2d(in_width, width, 3, stride, 1, bias=False),
                    nn.BatchNorm2d(width), nn.Conv2d(width, width, 3, 1, 1, bias=False)])
                if stride != 1 or in_width != width:
                    block.append(nn.Conv2d(in_width, width, 1, stride, 0, bias=False))
                self.blocks.append(block)
                in_width = width
        self.fc = nn.Linear(512, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        relu = torch.nn.functional.relu
        x = relu(self.stem_bn(self.stem_conv(x)))
        for block in self.blocks:
            a = relu(block[0](x))
            branch = block[3](relu(block[2](block[1](a))))
            x = branch + (block[4](a) if len(block) == 5 else a)
        x = torch.nn.functional.avg_pool2d(x, 4).flatten(1)
        return self.fc(x)


def copy_weights(source: torch.nn.Module, target: torch.nn.Module) -> None:
    """Copy every parameter and buffer by position, checking the shapes agree."""
    source_state, target_state = list(source.state_dict().values()), target.state_dict()
    assert len(source_state) == len(target_state)
    for (name, value), tensor in zip(target_state.items(), source_state, strict=True):
        assert value.shape == tensor.shape, name
    target.load_state_dict(dict(zip(target_state, source_state, strict=True)))


def test_preact_resnet18_is_the_mixup_authors_network_with_its_parameter_count():
    model = build_model("preact_resnet18", 10)
    # kuangliu's PreActResNet18 (11,171,146) plus the stem BN (2 x 64), no final BN.
    assert parameters(model) == 11_171_274
    assert parameters(ReferencePreActResNet18()) == 11_171_274
    assert parameters(build_model("preact_resnet18", 100)) == 11_171_274 + 90 * 513


@pytest.mark.parametrize("train", [False, True])
def test_preact_resnet18_computes_what_the_reference_computes(train):
    torch.manual_seed(0)
    reference = ReferencePreActResNet18().double()
    model = build_model("preact_resnet18", 10).double()
    for module in reference.modules():  # running statistics other than 0 and 1 in eval mode
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    copy_weights(reference, model)
    reference.train(train)
    model.train(train)
    images = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(1),
                         dtype=torch.float64)
    expected, found = reference(images), model(images)
    assert torch.allclose(found, expected, rtol=1e-9, atol=1e-12)
    assert expected.abs().max() > 1e-3  # not trivially zero


def test_preact_resnet18_has_three_stages_to_mix_after_and_no_final_bn():
    model = build_model("preact_resnet18", 10)
    assert mixing_stages(model) == [model.layer1, model.layer2, model.layer3]
    features = model.forward_features(torch.randn(2, 3, 32, 32))
    assert (features < 0).any()  # no ReLU (nor BN-ReLU) after the last stage


# --- initialisation: as the reference code by default, zero_init_last as a switch ---------


def last_bn_weights(model: torch.nn.Module) -> list[torch.Tensor]:
    return [block.bn2.weight for layer in (model.layer1, model.layer2, model.layer3,
                                           model.layer4) for block in layer]


def test_resnet18_zero_init_last_is_a_switch_off_by_default():
    torch.manual_seed(0)
    plain = last_bn_weights(build_model("resnet18", 10))
    assert len(plain) == 8
    assert all(bool((weight == 1).all()) for weight in plain)
    zeroed = last_bn_weights(build_model("resnet18", 10, zero_init_last=True))
    assert all(bool((weight == 0).all()) for weight in zeroed)


@pytest.mark.parametrize("name", ["resnet18", "preact_resnet18_timm"])
def test_timm_networks_initialise_the_cifar_stem_like_their_other_convs(name):
    torch.manual_seed(0)
    model = build_model(name, 10)
    stem = model.conv1 if name == "resnet18" else model.stem.conv
    kaiming_fan_out = (2 / (stem.out_channels * 9)) ** 0.5  # 0.0589; PyTorch's default: 0.111
    assert abs(stem.weight.std().item() / kaiming_fan_out - 1) < 0.1


def test_preact_resnet18_uses_pytorch_default_init_and_zero_init_last_zeroes_the_last_conv():
    torch.manual_seed(0)
    model = build_model("preact_resnet18", 10)
    # PyTorch's default conv init: uniform with bound 1 / sqrt(fan_in), std 1 / sqrt(3 fan_in).
    default_std = 1 / (3 * 27) ** 0.5
    assert abs(model.conv1.weight.std().item() / default_std - 1) < 0.1
    blocks = [block for layer in (model.layer1, model.layer2, model.layer3, model.layer4)
              for block in layer]
    assert len(blocks) == 8 and all(bool((block.conv2.weight != 0).any()) for block in blocks)
    zeroed = build_model("preact_resnet18", 10, zero_init_last=True)
    zeroed_blocks = [block for layer in (zeroed.layer1, zeroed.layer2, zeroed.layer3,
                                         zeroed.layer4) for block in layer]
    assert all(bool((block.conv2.weight == 0).all()) for block in zeroed_blocks)
    assert all(bool((block.bn2.weight == 1).all()) for block in zeroed_blocks)


def test_timm_models_take_zero_init_last_where_they_have_it():
    resnet = build_model("timm:resnet18", 10)  # timm's own default would be true
    assert bool((resnet.layer1[0].bn2.weight == 1).all())
    zeroed = build_model("timm:resnet18", 10, zero_init_last=True)
    assert bool((zeroed.layer1[0].bn2.weight == 0).all())
    assert init_record("timm:resnet18", True)["zero_init_last"] is True
    assert init_record("timm:vit_tiny_patch16_224", True)["zero_init_last"] is None
    assert init_record("preact_resnet18", False) == {
        "zero_init_last": False, "weights": "pytorch default (as the reference code)",
        "stem": "pytorch default", "zero_init_last_target": "each block's conv2 weight"}


def test_build_trainee_passes_zero_init_last_to_the_model():
    from mixup_bench.train import Runtime, build_trainee

    optim = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4, "nesterov": False}
    runtime = Runtime(torch.device("cpu"), "fp32", False)
    for zero_init_last in (False, True):
        trainee = build_trainee(runtime, "resnet18", 10, 0.0, optim,
                                zero_init_last=zero_init_last)
        weights = last_bn_weights(trainee.model)
        assert all(bool((weight == (0 if zero_init_last else 1)).all()) for weight in weights)
