"""The model-guided interface (ModelGuide, use_model) and AttentiveMix.

A "probe" network stands in for a ResNet: its last stage's map is a
BatchNorm of the image pooled to 4x4, so the cells AttentiveMix must pick
can be read off the partner image, and the BatchNorm shows whether an extra
pass touches the running statistics.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf
from torch import nn

from mixup_bench.config import validate
from mixup_bench.errors import ConfigError
from mixup_bench.mixing import ModelGuide, build_mixer, mixer_names
from mixup_bench.mixing.attentivemix import top_cells_mask
from mixup_bench.mixing.ops import one_hot, soft_target_cross_entropy
from mixup_bench.models import build_model, model_names

from .test_mixing_variants import ks_critical, ks_distance, numpy_beta


class Probe(nn.Module):
    """forward_features: BatchNorm(image) pooled to 4x4 (monotone in the pixel values)."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)
        self.linear = nn.Linear(3, num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.bn(x), 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.forward_features(x).mean((2, 3)))


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def guided(name: str, model: nn.Module | None = None, alpha: float = 1.0, **options):
    mixer = build_mixer(name, 10, alpha, **options)
    mixer.use_model(ModelGuide(model if model is not None else Probe().train()))
    return mixer


def bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.clone() for key, value in model.state_dict().items()
            if "running" in key or "num_batches" in key}


# --- the guide's extra passes leave training untouched -----------------------------------


@pytest.mark.parametrize("kind", ["features", "saliency"])
def test_extra_passes_change_no_running_statistics_weights_or_gradients(kind):
    model = build_model("preact_resnet18", 10).train()
    images, targets = torch.randn(4, 3, 32, 32, generator=generator(0)), one_hot(
        torch.arange(4), 10)
    soft_target_cross_entropy(model(images), targets).backward()  # a training step's grads
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    guide = ModelGuide(model)
    other = torch.randn(4, 3, 32, 32, generator=generator(1))
    if kind == "features":
        maps = guide.feature_maps(other)
        assert maps.shape == (4, 512, 4, 4) and not maps.requires_grad
        # batch statistics, as the training forward uses them (not the running ones)
        with torch.no_grad():
            expected = model.forward_features(other)
    else:
        saliency = guide.input_saliency(other, targets)
        inputs = other.clone().requires_grad_(True)
        loss = soft_target_cross_entropy(model(inputs), targets) * 4
        (gradient,) = torch.autograd.grad(loss, inputs)
        expected = gradient.square().mean(1).sqrt()
        maps = saliency
        assert saliency.shape == (4, 32, 32)
    assert model.training and guide.passes == 1
    for name, p in model.named_parameters():
        assert torch.equal(p.grad, grads[name]), name
    assert torch.allclose(maps, expected, atol=1e-5)


def test_running_statistics_are_those_before_the_extra_pass():
    model = build_model("preact_resnet18", 10).train()
    stats = bn_state(model)
    guide = ModelGuide(model)
    guide.feature_maps(torch.randn(4, 3, 32, 32, generator=generator(0)) * 3 + 1)
    guide.input_saliency(torch.randn(4, 3, 32, 32, generator=generator(1)),
                         one_hot(torch.arange(4), 10))
    after = bn_state(model)
    assert stats.keys() == after.keys() and len(stats) > 10
    assert all(torch.equal(stats[key], after[key]) for key in stats)
    model(torch.randn(4, 3, 32, 32, generator=generator(2)))  # the check can fail: a training
    assert not all(torch.equal(stats[k], bn_state(model)[k]) for k in stats)  # pass moves them
    assert all(layer.track_running_stats for layer in model.modules()
               if isinstance(layer, nn.BatchNorm2d))


def test_the_guide_runs_the_plain_module_of_a_compiled_network():
    model = Probe().train()
    compiled = torch.compile(model, backend="eager")
    assert ModelGuide(compiled).model is model


def test_a_guided_mixer_without_a_model_says_so():
    mixer = build_mixer("attentivemix", 10, 1.0)
    with pytest.raises(RuntimeError, match="use_model"):
        mixer(torch.randn(4, 3, 32, 32), torch.arange(4), generator(0))


# --- AttentiveMix ------------------------------------------------------------------------


def cell_images(count: int, seed: int = 0) -> torch.Tensor:
    """Images of 4x4 cells of 8x8 pixels, each cell one random value (equal in all channels)."""
    cells = torch.rand(count, 1, 4, 4, generator=generator(seed))
    return cells.repeat_interleave(8, 2).repeat_interleave(8, 3).expand(-1, 3, -1, -1).clone()


@pytest.mark.parametrize("lam_per", ["batch", "sample"])
def test_attentivemix_pastes_the_partners_top_cells_and_weights_the_real_share(lam_per):
    count = 10  # labels all different: each target weight is one image's
    images, labels = cell_images(count), torch.arange(count)
    mixer = guided("attentivemix", lam_per=lam_per)
    for seed in range(3):
        mixed = mixer(images, labels, generator(seed))
        assert mixed.method == "attentivemix"
        assert torch.allclose(mixed.targets.sum(1), torch.ones(count))
        lams = mixed.lams if lam_per == "sample" else torch.full((count,), mixed.lam)
        assert (mixed.lams is None) == (lam_per == "batch")
        assert mixed.lam == pytest.approx(float(lams.mean()))
        for row in range(count):
            own = (mixed.images[row] == images[row]).all(0)
            sources = [j for j in range(count)
                       if bool(((mixed.images[row] == images[j]).all(0) | own).all())]
            partner = row if bool(own.all()) else next(j for j in sources if j != row)
            share = float(own.double().mean()) if partner != row else 1.0
            expected = lams[row] * one_hot(labels[row], 10) + (1 - lams[row]) * one_hot(
                labels[partner], 10)
            assert torch.allclose(mixed.targets[row], expected, atol=1e-6)
            if partner == row:
                continue
            assert share == pytest.approx(float(lams[row]), abs=1e-7)  # the real pixel share
            pasted = ~own[::8, ::8].flatten()
            k = int(pasted.sum())
            brightness = images[partner, 0, ::8, ::8].flatten()
            top = torch.argsort(brightness, descending=True)[:k]
            assert set(top.tolist()) == set(pasted.nonzero().flatten().tolist())


def test_top_cells_mask_takes_k_per_row_with_ties_to_the_lower_index():
    scores = torch.tensor([[0.1, 0.9, 0.5, 0.9], [1.0, 1.0, 1.0, 1.0]])
    mask = top_cells_mask(scores, torch.tensor([2, 3]))
    assert mask.tolist() == [[False, True, False, True], [True, True, True, False]]
    assert top_cells_mask(scores, torch.tensor([0, 4])).sum(1).tolist() == [0, 4]


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_attentivemix_lambda_is_beta_rounded_to_whole_cells(alpha):
    count = 2000
    images, labels = torch.zeros(count, 3, 8, 8), torch.zeros(count, dtype=torch.long)
    lams = guided("attentivemix", alpha=alpha, lam_per="sample")(images, labels,
                                                                  generator(0)).lams
    expected = 1 - np.round((1 - numpy_beta(alpha, 20000, seed=1).astype(np.float64)) * 16) / 16
    assert torch.equal(lams * 16, (lams * 16).round())  # whole cells of 4 x 4
    assert ks_distance(lams, expected) < ks_critical(count, 20000)
    wrong = 1 - np.round((1 - numpy_beta(0.2 if alpha == 1.0 else 2.0, 20000)) * 16) / 16
    assert ks_distance(lams, wrong) > ks_critical(count, 20000)  # the check can fail


def check_inputs_unchanged_and_seeded(mixer, images: torch.Tensor,
                                      labels: torch.Tensor) -> None:
    """The mixer leaves its inputs alone; a seed gives one batch, another seed another."""
    before, labels_before = images.clone(), labels.clone()
    first, again = mixer(images, labels, generator(3)), mixer(images, labels, generator(3))
    other = mixer(images, labels, generator(4))
    assert torch.equal(images, before) and torch.equal(labels, labels_before)
    assert torch.equal(first.images, again.images) and torch.equal(first.targets, again.targets)
    assert not torch.equal(first.images, other.images)


@pytest.mark.parametrize("lam_per", ["batch", "sample"])
def test_attentivemix_inputs_unchanged_and_seeded(lam_per):
    images, labels = torch.randn(8, 3, 16, 16, generator=generator(0)), torch.arange(8)
    check_inputs_unchanged_and_seeded(guided("attentivemix", lam_per=lam_per), images, labels)


@pytest.mark.parametrize("options, expected", [
    ({"grid": 0}, "aug.grid=0: expected an integer in [1, 64]"),
    ({"grid": True}, "aug.grid=True: expected an integer in [1, 64]"),
    ({"grid": 2.5}, "aug.grid=2.5: expected an integer in [1, 64]"),
    ({"decay_power": 3}, "aug.decay_power=3: expected an option of aug=attentivemix ("),
])
def test_attentivemix_bad_options_are_refused_with_one_line(options, expected):
    with pytest.raises(ConfigError) as error:
        build_mixer("attentivemix", 10, 1.0, **options)
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)


def test_attentivemix_grid_must_divide_the_image():
    with pytest.raises(ConfigError, match=r"aug.grid=3: expected a divisor of the image size"):
        guided("attentivemix", grid=3)(torch.zeros(2, 3, 32, 32), torch.arange(2), generator(0))


def test_attentivemix_composes_from_the_shipped_config():
    assert "attentivemix" in mixer_names()
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=["aug=attentivemix"])
    config = OmegaConf.to_container(cfg, resolve=True)
    assert validate(config, model_names(), mixer_names()) == []
    options = {key: value for key, value in config["aug"].items() if key != "name"}
    mixer = build_mixer("attentivemix", 10, config["alpha"], **options)
    assert mixer.grid == 4 and config["alpha"] == 1.0


# --- the trainer ---------------------------------------------------------------------------


@pytest.mark.parametrize("compiled", [False, True])
def test_the_trainer_gives_the_mixer_the_plain_network_and_compile_is_allowed(compiled):
    """trainer.compile=true is allowed with model-guided mixers: the training forward runs
    compiled (Dynamo, eager backend here) and the extra pass on the plain module, so the
    mixed batch is the same as without compile."""
    from mixup_bench.train import Runtime
    from mixup_bench.train.loop import check_compilable, train_one_epoch

    results = []
    for wrap in (False, compiled):
        torch.manual_seed(0)
        model = Probe()
        network = torch.compile(model, backend="eager") if wrap else model
        check_compilable(wrap, build_mixer("attentivemix", 10, 1.0))  # not refused
        mixer = build_mixer("attentivemix", 10, 1.0)
        batches = [(cell_images(8, seed), torch.arange(8)) for seed in range(3)]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        scaler = torch.amp.GradScaler("cpu", enabled=False)
        runtime = Runtime(torch.device("cpu"), "fp32", False)
        seen: list = []

        def recorded(*args, original=mixer.mix_with_model, seen=seen):
            seen.append(original(*args))
            return seen[-1]

        mixer.mix_with_model = recorded
        train_one_epoch(network, batches, mixer, generator(0), optimizer, scaler, runtime)
        assert mixer.guide.model is model and mixer.guide.passes == 3  # one per batch
        results.append((seen, model.linear.weight.detach().clone()))
    (plain, plain_weight), (other, other_weight) = results
    assert all(torch.equal(a.images, b.images) for a, b in zip(plain, other, strict=True))
    assert torch.allclose(plain_weight, other_weight, atol=1e-6)


class ThreeSteps:
    """What a mixer needs of a training loader: its length, the steps in an epoch."""

    generator = None

    def __len__(self) -> int:
        return 3


@pytest.mark.parametrize("name", ["attentivemix", "puzzlemix"])
def test_an_epochs_draws_made_at_its_first_step_equal_drawing_step_by_step(name):
    if name == "puzzlemix":
        pytest.importorskip("gco")
    images = [cell_images(8, seed) for seed in range(3)]
    labels = torch.arange(8)
    model = Probe().train()
    step_by_step = guided(name, model)
    in_loop = guided(name, model)
    in_loop.bind(ThreeSteps())
    in_loop.set_epoch(1, 1)
    loop_generator, step_generator = generator(5), generator(5)
    for batch in images:
        expected = step_by_step(batch, labels, step_generator)
        got = in_loop(batch, labels, loop_generator)
        assert torch.equal(got.images, expected.images)
        assert torch.equal(got.targets, expected.targets)
        assert in_loop._epoch_draws is not None and in_loop._epoch_draws.key[0] == 8
    assert torch.equal(loop_generator.get_state(), step_generator.get_state())
