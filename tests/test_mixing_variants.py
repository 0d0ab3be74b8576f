"""mixing variants: lambda shaping, per-example lambda, alpha schedules, smoothing, options.

Distribution checks use ~20k draws of the sample functions and a two-sample
Kolmogorov-Smirnov distance against NumPy's independent Beta sampler.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixup_bench import mixing
from mixup_bench.errors import ConfigError
from mixup_bench.mixing import build_mixer, soft_target_cross_entropy
from mixup_bench.mixing.ops import (
    box_from_centre,
    boxes_from_centres,
    cutmix_box,
    one_hot,
    random_partner,
)
from mixup_bench.mixing.options import alpha_at, sample_beta, sample_lambda

from .partner_mix import cutmix, mixup

COUNT = 20000


def ks_distance(ours: torch.Tensor | list[float], reference: np.ndarray) -> float:
    ours, theirs = np.sort(torch.as_tensor(ours).double().numpy()), np.sort(reference)
    grid = np.concatenate([ours, theirs])
    first = np.searchsorted(ours, grid, side="right") / len(ours)
    second = np.searchsorted(theirs, grid, side="right") / len(theirs)
    return float(np.abs(first - second).max())


def ks_critical(n: int, m: int) -> float:
    """The two-sample KS distance exceeded with probability 0.1% under the null."""
    return 1.95 * math.sqrt((n + m) / (n * m))


def numpy_beta(alpha: float, count: int, seed: int = 0) -> np.ndarray:
    # In float32 and capped at the float below 1, as torch's draws are: at alpha=0.2 about 2%
    # of Beta's mass lies above 1 - 6e-8, and KS sees where it sits.
    draws = np.random.default_rng(seed).beta(alpha, alpha, count).astype(np.float32)
    return np.minimum(draws, np.nextafter(np.float32(1), np.float32(0)))


def batch(count=8, num_classes=10, seed=0, size=8):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, 3, size, size, generator=generator)
    labels = torch.randperm(num_classes, generator=generator)[:count]
    return images, labels


# --- defaults leave Mixup and CutMix exactly as they were ---------------------------


def test_default_options_reproduce_the_plain_mixers_draw_for_draw():
    images, labels = batch()
    defaults = {"lam_min": None, "lam_fold": False, "lam_per": "batch", "partner": "permutation",
                "alpha_schedule": "constant", "alpha_final": None, "off_last_epochs": 0,
                "label_smoothing": 0.0}
    for name in ("mixup", "cutmix"):
        mixer = build_mixer(name, 10, 0.4, **defaults)
        got = mixer(images, labels, torch.Generator().manual_seed(3))
        generator = torch.Generator().manual_seed(3)  # the draws of the original mixers
        lam = float(sample_beta(0.4, generator))
        partner = random_partner(8, generator)
        if name == "mixup":
            expected = mixup(images, one_hot(labels, 10), lam, partner)
        else:
            box = cutmix_box(8, 8, lam, generator)
            expected = cutmix(images, one_hot(labels, 10), box, partner)
        assert torch.equal(got.images, expected.images)
        assert torch.equal(got.targets, expected.targets)
        assert got.lam == expected.lam and got.lams is None


# --- lam_min: redraw, a truncated Beta ------------------------------------------------


def test_lam_min_redraws_so_lambda_is_beta_truncated_below_lam_min():
    alpha, lam_min = 0.2, 0.3
    draws = sample_lambda(alpha, torch.Generator().manual_seed(1), COUNT, lam_min=lam_min)
    assert draws.shape == (COUNT,) and draws.min().item() >= lam_min
    # Redraw, not clamp: no atom at lam_min (a clamp would put P(lam < 0.3) ~ 40% there).
    assert (draws == lam_min).float().mean().item() < 1e-3
    reference = numpy_beta(alpha, 4 * COUNT)
    truncated = reference[reference >= lam_min]
    assert ks_distance(draws, truncated) < ks_critical(COUNT, len(truncated))
    clamped = np.maximum(reference, lam_min)
    assert ks_distance(draws, clamped) > ks_critical(COUNT, len(clamped))


def test_lam_min_per_batch_draws_and_the_mixer_respect_it():
    generator = torch.Generator().manual_seed(2)
    scalars = torch.stack([sample_lambda(0.2, generator, lam_min=0.4) for _ in range(300)])
    assert scalars.shape == (300,) and scalars.min().item() >= 0.4
    images, labels = batch()
    mixer = build_mixer("mixup", 10, 0.2, lam_min=0.4)
    generator = torch.Generator().manual_seed(2)
    assert min(mixer(images, labels, generator).lam for _ in range(200)) >= 0.4


def test_lam_min_zero_is_the_plain_beta():
    plain = sample_beta(0.2, torch.Generator().manual_seed(5), count=100)
    shaped = sample_lambda(0.2, torch.Generator().manual_seed(5), 100, lam_min=0.0)
    assert torch.equal(shaped, plain)


# --- lam_fold: max(lam, 1 - lam) --------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_lam_fold_gives_the_folded_beta(alpha):
    draws = sample_lambda(alpha, torch.Generator().manual_seed(4), COUNT, fold=True)
    assert draws.min().item() >= 0.5
    reference = numpy_beta(alpha, COUNT)
    folded = np.maximum(reference, 1 - reference)
    assert ks_distance(draws, folded) < ks_critical(COUNT, COUNT)
    assert ks_distance(draws, reference) > ks_critical(COUNT, COUNT)
    if alpha == 1.0:  # the folded uniform is uniform on [0.5, 1]
        assert draws.double().mean().item() == pytest.approx(0.75, abs=0.005)
    # lam_min <= 0.5 never binds after folding.
    with_min = sample_lambda(alpha, torch.Generator().manual_seed(4), COUNT, fold=True, lam_min=0.3)
    assert torch.equal(with_min, draws)


# --- lam_per=sample ----------------------------------------------------------------------


def test_per_example_mixup_weights_each_row_by_its_own_lambda():
    count = 16
    images, labels = batch(count, num_classes=count)  # every label distinct
    mixed = build_mixer("mixup", count, 1.0, lam_per="sample")(images, labels,
                                                              torch.Generator().manual_seed(0))
    assert mixed.lams.shape == (count,) and len(set(mixed.lams.tolist())) == count
    assert torch.allclose(mixed.targets.sum(1), torch.ones(count))
    assert mixed.lam == pytest.approx(mixed.lams.mean().item())
    for row in range(count):
        lam, own = mixed.lams[row].item(), labels[row].item()
        others = mixed.targets[row].clone()
        others[own] = 0
        if others.max() == 0:  # partnered with itself
            continue
        partner = (labels == others.argmax()).nonzero().item()
        assert mixed.targets[row, own].item() == pytest.approx(lam, abs=1e-6)
        expected = lam * images[row] + (1 - lam) * images[partner]
        assert torch.allclose(mixed.images[row], expected, atol=1e-5)


def test_per_example_lambdas_follow_the_beta():
    images, labels = batch(100, num_classes=100, size=2)
    mixer = build_mixer("mixup", 100, 0.2, lam_per="sample")
    generator = torch.Generator().manual_seed(6)
    lams = torch.cat([mixer(images, labels, generator).lams for _ in range(100)])
    assert ks_distance(lams, numpy_beta(0.2, COUNT)) < ks_critical(len(lams), COUNT)
    assert ks_distance(lams, numpy_beta(0.4, COUNT)) > ks_critical(len(lams), COUNT)


def test_per_example_cutmix_pastes_one_box_per_row_with_its_area_as_lambda():
    count = 16
    # Constant images 0..15: a pasted pixel is recognisable by its value.
    images = torch.arange(count, dtype=torch.float32).view(count, 1, 1, 1).expand(count, 3, 32,
                                                                                   32).clone()
    labels = torch.arange(count)
    mixed = build_mixer("cutmix", count, 1.0, lam_per="sample")(images, labels,
                                                               torch.Generator().manual_seed(1))
    assert torch.allclose(mixed.targets.sum(1), torch.ones(count))
    boxes_seen = set()
    for row in range(count):
        pasted = mixed.images[row, 0] != row
        if not pasted.any():
            continue
        rows, cols = pasted.nonzero(as_tuple=True)
        box = (rows.min().item(), rows.max().item() + 1, cols.min().item(), cols.max().item() + 1)
        assert pasted.sum().item() == (box[1] - box[0]) * (box[3] - box[2])  # a rectangle
        assert mixed.lams[row].item() == pytest.approx(1 - pasted.float().mean().item(), abs=1e-6)
        assert mixed.targets[row, row].item() == pytest.approx(mixed.lams[row].item(), abs=1e-6)
        boxes_seen.add(box)
    assert len(boxes_seen) > count // 2  # not one box for the whole batch


def test_batched_boxes_equal_the_single_box_function():
    generator = torch.Generator().manual_seed(0)
    lam = torch.rand(2000, generator=generator)
    centre_y = torch.randint(0, 24, (2000,), generator=generator)
    centre_x = torch.randint(0, 40, (2000,), generator=generator)
    boxes = boxes_from_centres(24, 40, lam, centre_y, centre_x)
    for index in range(2000):
        assert tuple(boxes[index].tolist()) == box_from_centre(
            24, 40, lam[index].item(), centre_y[index].item(), centre_x[index].item())


# --- alpha schedules and off_last_epochs --------------------------------------------------


def test_alpha_schedules_per_epoch():
    linear = [alpha_at(1.0, "linear_decay", 0.2, epoch, 5) for epoch in range(1, 6)]
    assert linear == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])
    cosine = [alpha_at(1.0, "cosine_decay", 0.2, epoch, 5) for epoch in range(1, 6)]
    half = 0.4 * (1 + math.cos(math.pi / 4))
    assert cosine == pytest.approx([1.0, 0.2 + half, 0.6, 0.2 + 0.8 - half, 0.2])
    assert [alpha_at(1.0, "constant", 0.2, epoch, 5) for epoch in range(1, 6)] == [1.0] * 5
    assert alpha_at(1.0, "linear_decay", 0.2, 1, None) == 1.0  # outside training: the start


def test_mixup_draws_its_lambda_with_the_scheduled_alpha():
    mixer = build_mixer("mixup", 10, 1.0, alpha_schedule="linear_decay", alpha_final=0.2)
    images, labels = batch()
    for epoch, alpha in zip(range(1, 6), (1.0, 0.8, 0.6, 0.4, 0.2), strict=True):
        mixer.set_epoch(epoch, 5)
        drawn = mixer(images, labels, torch.Generator().manual_seed(epoch)).lam
        expected = float(sample_lambda(alpha, torch.Generator().manual_seed(epoch)))
        assert drawn == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("name", ["cutmix", "mixup_cutmix"])
def test_the_box_mixers_follow_the_alpha_schedule(name):
    """At alpha 1 lambda is uniform: tiny boxes (lambda > 0.98) are rare. At alpha 0.01
    (the schedule's end; mixup_cutmix's CutMix alpha follows by the same factor) half the
    draws are near 1, so half the boxes are tiny."""
    options = {"cutmix_alpha": 2.0, "switch_prob": 1.0} if name == "mixup_cutmix" else {}
    start = 0.5 if name == "mixup_cutmix" else 1.0  # CutMix alpha 1.0 either way
    mixer = build_mixer(name, 10, start, alpha_schedule="linear_decay",
                        alpha_final=start / 100, **options)
    images, labels = batch()
    tiny = {}
    for epoch in (1, 2):
        mixer.set_epoch(epoch, 2)
        lams = [mixer(images, labels, torch.Generator().manual_seed(seed)).lam
                for seed in range(300)]
        tiny[epoch] = sum(lam > 0.98 for lam in lams) / len(lams)
    assert tiny[1] < 0.08 and tiny[2] > 0.35, tiny


@pytest.mark.parametrize("name", ["mixup", "cutmix", "mixup_cutmix"])
def test_off_last_epochs_trains_unmixed_at_the_end(name):
    images, labels = batch()
    mixer = build_mixer(name, 10, 1.0, off_last_epochs=2)
    before = images.clone()
    mixed = mixer(images, labels, torch.Generator().manual_seed(0))  # no set_epoch yet: mixes
    assert mixed.lam < 1
    for epoch in range(1, 7):
        mixer.set_epoch(epoch, 6)
        mixed = mixer(images, labels, torch.Generator().manual_seed(epoch))
        if epoch <= 4:
            assert mixed.lam < 1 and not torch.equal(mixed.images, images)
        else:
            assert mixed.lam == 1.0 and mixed.method == "none"
            assert torch.equal(mixed.images, images)
            assert torch.equal(mixed.targets, one_hot(labels, 10))
    assert torch.equal(images, before)


# --- label smoothing ------------------------------------------------------------------------


def test_label_smoothing_with_none_equals_cross_entropys_own():
    images, labels = batch()
    logits = torch.randn(8, 10, generator=torch.Generator().manual_seed(9))
    for epsilon in (0.1, 0.3):
        mixer = build_mixer("none", 10, None, label_smoothing=epsilon)
        targets = mixer(images, labels, None).targets
        expected = F.cross_entropy(logits, labels, label_smoothing=epsilon)
        assert soft_target_cross_entropy(logits, targets).item() == pytest.approx(
            expected.item(), rel=1e-6)


@pytest.mark.parametrize("name", ["mixup", "cutmix", "mixup_cutmix"])
def test_label_smoothing_is_applied_after_mixing(name):
    images, labels = batch()
    epsilon = 0.2
    plain = build_mixer(name, 10, 1.0)(images, labels, torch.Generator().manual_seed(1))
    smoothed = build_mixer(name, 10, 1.0, label_smoothing=epsilon)(
        images, labels, torch.Generator().manual_seed(1))
    assert torch.equal(smoothed.images, plain.images)
    assert torch.allclose(smoothed.targets, (1 - epsilon) * plain.targets + epsilon / 10)
    assert torch.allclose(smoothed.targets.sum(1), torch.ones(8))
    assert smoothed.targets.min().item() == pytest.approx(epsilon / 10)


# --- options: validation, defaults, description --------------------------------------------


@pytest.mark.parametrize("name, key, value, expected", [
    ("mixup", "lam_min", 0.7, "aug.lam_min=0.7: expected null or a number in [0, 0.5]"),
    ("mixup", "lam_min", "high", "aug.lam_min='high': expected null or a number in [0, 0.5]"),
    ("mixup", "lam_fold", "yes", "aug.lam_fold='yes': expected true or false"),
    ("cutmix", "lam_per", "elem", "aug.lam_per='elem': expected batch or sample"),
    ("mixup", "partner", "flip", "aug.partner='flip': expected permutation or dataset"),
    ("mixup", "alpha_schedule", "step",
     "aug.alpha_schedule='step': expected constant, linear_decay or cosine_decay"),
    ("mixup", "alpha_final", 0, "aug.alpha_final=0: expected null or a number > 0"),
    ("mixup", "off_last_epochs", -1, "aug.off_last_epochs=-1: expected an integer >= 0"),
    ("mixup", "off_last_epochs", 1.5, "aug.off_last_epochs=1.5: expected an integer >= 0"),
    ("none", "label_smoothing", 1.0, "aug.label_smoothing=1.0: expected a number in [0, 1)"),
    ("mixup_cutmix", "switch_prob", 1.5, "aug.switch_prob=1.5: expected a number in [0, 1]"),
    ("mixup_cutmix", "cutmix_alpha", 0.0, "aug.cutmix_alpha=0.0: expected a number > 0"),
    ("mixup", "alpha_schedule", "cosine_decay",
     "aug.alpha_final=None: expected a number > 0 with aug.alpha_schedule=cosine_decay"),
])
def test_bad_options_give_one_line_naming_key_value_and_allowed(name, key, value, expected):
    with pytest.raises(ValueError) as error:
        build_mixer(name, 10, 1.0, **{key: value})
    assert str(error.value) == expected
    assert isinstance(error.value, ConfigError)  # the CLI prints it as one line, exit 2


def test_unknown_options_are_refused_with_the_valid_ones():
    with pytest.raises(ValueError) as error:
        build_mixer("mixup", 10, 0.2, lam_mn=0.3)
    assert str(error.value) == (
        "aug.lam_mn=0.3: expected an option of aug=mixup (alpha_final, alpha_schedule, "
        "label_smoothing, lam_fold, lam_min, lam_per, off_last_epochs, partner, prob)")
    with pytest.raises(ValueError, match=r"aug.switch_prob=0.5: expected an option of aug=cutmix"):
        build_mixer("cutmix", 10, 1.0, switch_prob=0.5)
    with pytest.raises(ValueError, match=r"^alpha=None: expected a number > 0 for aug=mixup$"):
        build_mixer("mixup", 10, None)


def test_none_accepts_and_ignores_the_mixing_options():
    images, labels = batch()
    mixer = build_mixer("none", 10, None, lam_min=0.3, lam_fold=True, lam_per="sample",
                        partner="dataset", alpha_schedule="linear_decay", alpha_final=0.1,
                        off_last_epochs=3)
    mixed = mixer(images, labels, torch.Generator().manual_seed(0))
    assert mixed.images is images and torch.equal(mixed.targets, one_hot(labels, 10))
    assert mixer.summary() == {"name": "none", "alpha": None, "label_smoothing": 0.0}


def test_describe_gives_the_effective_settings():
    mixer = build_mixer("mixup_cutmix", 10, 0.2, lam_min=0.3, lam_fold=True, alpha_final=0.1,
                        switch_prob=0.3)
    assert mixer.summary() == {
        "name": "mixup_cutmix", "alpha": 0.2, "cutmix_alpha": 1.0, "switch_prob": 0.3,
        "lam_min": None, "lam_fold": True,  # lam_min has no effect once folded
        "lam_per": "batch", "partner": "permutation", "alpha_schedule": "constant",
        "alpha_final": None,  # ignored by the constant schedule
        "off_last_epochs": 0, "prob": 1.0, "label_smoothing": 0.0}


def test_the_shipped_aug_configs_list_every_option_with_its_default():
    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from mixup_bench.mixing.options import MixOptions

    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        for name in mixing.mixer_names():
            config = OmegaConf.to_container(compose(config_name="train",
                                                    overrides=[f"aug={name}"]), resolve=True)
            options = {key: value for key, value in config["aug"].items() if key != "name"}
            mixer = build_mixer(name, 10, config["alpha"], **options)
            assert set(options) == set(mixer.accepted), name
            assert mixer.options == MixOptions(), name


# --- aug.prob: the chance that a batch is mixed at all ----------------------------------------


@pytest.mark.parametrize("name", ["mixup", "cutmix", "mixup_cutmix", "manifold_mixup"])
def test_prob_one_draws_nothing_so_the_stream_is_unchanged(name):
    images, labels = batch()
    plain, with_prob = build_mixer(name, 10, 1.0), build_mixer(name, 10, 1.0, prob=1.0)
    first, second = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for _ in range(5):
        expected, found = plain(images, labels, first), with_prob(images, labels, second)
        assert torch.equal(found.images, expected.images)
        assert torch.equal(found.targets, expected.targets)
        assert found.lam == expected.lam and found.method == expected.method
    assert torch.equal(first.get_state(), second.get_state())
    assert with_prob.summary()["prob"] == 1.0


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_prob_half_mixes_about_half_of_the_batches(name):
    images, labels = batch()
    mixer = build_mixer(name, 10, 1.0, prob=0.5, label_smoothing=0.1)
    generator = torch.Generator().manual_seed(0)
    mixed = 0
    for _ in range(2000):
        result = mixer(images, labels, generator)
        if result.method == "none":  # unmixed exactly as off_last_epochs leaves a batch
            assert result.images is images and result.lam == 1.0
            assert torch.allclose(result.targets, 0.9 * one_hot(labels, 10) + 0.01)
        else:
            mixed += 1
    # Binomial(2000, 0.5): sd 11.2 batches; 0.04 * 2000 = 80 is over 7 sd.
    assert abs(mixed / 2000 - 0.5) < 0.04
    assert mixer.summary()["prob"] == 0.5


def test_prob_zero_never_mixes_and_none_accepts_it():
    images, labels = batch()
    mixer = build_mixer("mixup", 10, 1.0, prob=0.0)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        result = mixer(images, labels, generator)
        assert result.method == "none" and torch.equal(result.targets, one_hot(labels, 10))
    unmixed = build_mixer("none", 10, None, prob=0.5)
    assert unmixed(images, labels, None).images is images


@pytest.mark.parametrize("value", [1.5, -0.1, "x", True])
def test_bad_prob_is_refused_with_one_line_naming_it(value):
    with pytest.raises(ConfigError) as error:
        build_mixer("cutmix", 10, 1.0, prob=value)
    assert str(error.value) == f"aug.prob={value!r}: expected a number in [0, 1]"
    assert len(str(error.value).splitlines()) == 1
