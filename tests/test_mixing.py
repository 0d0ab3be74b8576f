"""mixing: the maths cross-checked against timm and torchvision, and the lambda distribution."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mixup_bench.mixing import (
    Mixer,
    build_mixer,
    mixer_names,
    register_mixer,
    soft_target_cross_entropy,
)
from mixup_bench.mixing.guided import ModelGuide
from mixup_bench.mixing.ops import box_from_centre, box_lambda, one_hot
from mixup_bench.mixing.options import sample_beta
from mixup_bench.models import build_model

from .partner_mix import cutmix, mixup


def batch(count=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(count, 3, 32, 32, generator=generator)
    labels = torch.randperm(10, generator=generator)[:count]
    return images, labels


def test_mixup_matches_timm_given_the_same_lambda_and_partner(monkeypatch):
    from timm.data import Mixup as TimmMixup

    images, labels = batch()
    monkeypatch.setattr(np.random, "beta", lambda a, b: 0.3)
    timm_mixup = TimmMixup(mixup_alpha=1.0, cutmix_alpha=0.0, label_smoothing=0.0,
                           num_classes=10)
    expected_images, expected_targets = timm_mixup(images.clone(), labels.clone())
    flipped = torch.arange(images.shape[0]).flip(0)  # timm's partner: the batch reversed
    mine = mixup(images, one_hot(labels, 10), 0.3, flipped)
    assert torch.allclose(mine.images, expected_images, atol=1e-6)
    assert torch.allclose(mine.targets, expected_targets, atol=1e-6)


def test_mixup_matches_torchvision_v2(monkeypatch):
    from torchvision.transforms import v2

    images, labels = batch()
    transform = v2.MixUp(alpha=1.0, num_classes=10)
    monkeypatch.setattr(transform._dist, "sample", lambda shape=(): torch.tensor(0.7))
    expected_images, expected_targets = transform(images.clone(), labels.clone())
    rolled = torch.arange(images.shape[0]).roll(1)  # torchvision's partner: rolled by one
    mine = mixup(images, one_hot(labels, 10), 0.7, rolled)
    assert torch.allclose(mine.images, expected_images, atol=1e-6)
    assert torch.allclose(mine.targets, expected_targets, atol=1e-6)


@pytest.mark.parametrize("lam, centre", [(0.4, (16, 16)), (0.1, (2, 30)), (0.75, (31, 0))])
def test_cutmix_box_and_lambda_match_timm(monkeypatch, lam, centre):
    from timm.data import Mixup as TimmMixup
    from timm.data import mixup as timm_mixup_module

    images, labels = batch()
    centres = iter(centre)
    monkeypatch.setattr(np.random, "beta", lambda a, b: lam)
    monkeypatch.setattr(np.random, "randint", lambda low, high, size=None: next(centres))
    timm_cutmix = TimmMixup(mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0,
                            num_classes=10)
    expected_images, expected_targets = timm_cutmix(images.clone(), labels.clone())
    box = box_from_centre(32, 32, lam, *centre)
    flipped = torch.arange(images.shape[0]).flip(0)
    mine = cutmix(images, one_hot(labels, 10), box, flipped)
    assert torch.equal(mine.images, expected_images)
    assert torch.allclose(mine.targets, expected_targets, atol=1e-6)
    assert timm_mixup_module is not None


def test_cutmix_matches_torchvision_v2_given_its_box():
    from torchvision.transforms import v2

    images, labels = batch()
    torch.manual_seed(4)
    expected_images, expected_targets = v2.CutMix(alpha=1.0, num_classes=10)(images.clone(),
                                                                           labels.clone())
    changed = (expected_images != images).any(0).any(0)  # (H, W): where the patch went
    rows, cols = torch.nonzero(changed, as_tuple=True)
    box = (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1)
    mine = cutmix(images, one_hot(labels, 10), box, torch.arange(8).roll(1))
    assert torch.equal(mine.images, expected_images)
    assert torch.allclose(mine.targets, expected_targets, atol=1e-6)


def test_cutmix_uses_height_and_width_from_the_last_two_axes():
    images = torch.zeros(2, 3, 16, 40)
    images[1] = 1.0
    box = box_from_centre(16, 40, 0.75, 8, 20)  # (1 - 0.75) -> half of each side
    assert box == (4, 12, 10, 30)
    mixed = cutmix(images, one_hot(torch.tensor([0, 1]), 10), box, torch.tensor([1, 0]))
    assert mixed.images[0].sum() == 3 * 8 * 20
    assert mixed.lam == pytest.approx(0.75)


def test_cutmix_lambda_is_the_real_pasted_fraction_after_clipping():
    box = box_from_centre(32, 32, 0.5, 0, 0)  # a corner: most of the box falls outside
    assert box == (0, 11, 0, 11)
    assert box_lambda(box, 32, 32) == pytest.approx(1 - 121 / 1024)


def test_mixers_never_change_their_input():
    images, labels = batch()
    before = images.clone()
    for name in ("mixup", "cutmix"):
        build_mixer(name, 10, 1.0)(images, labels, torch.Generator().manual_seed(0))
        assert torch.equal(images, before)


def test_cutmix_pastes_from_untouched_sources():
    # With partner = rolled batch, a write-through implementation would paste
    # already-pasted pixels; the batch form must paste each partner's original.
    images = torch.arange(4, dtype=torch.float32).view(4, 1, 1, 1).expand(4, 3, 8, 8).clone()
    mixed = cutmix(images, one_hot(torch.arange(4), 10), (0, 4, 0, 4), torch.tensor([1, 2, 3, 0]))
    assert mixed.images[:, 0, 0, 0].tolist() == [1.0, 2.0, 3.0, 0.0]
    assert mixed.images[:, 0, 7, 7].tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.parametrize("alpha", [0.2, 1.0, 4.0])
def test_lambda_follows_beta_alpha_alpha(alpha):
    count = 20000
    draws = sample_beta(alpha, torch.Generator().manual_seed(1), count=count).double()
    assert draws.mean().item() == pytest.approx(0.5, abs=0.01)
    assert draws.var().item() == pytest.approx(1 / (4 * (2 * alpha + 1)), rel=0.05)
    # Two-sample Kolmogorov-Smirnov against NumPy's independent Beta sampler;
    # 1.95 * sqrt(2 / n) is the critical distance at the 0.1% level.
    # The reference in float32 and capped below 1 as torch's Beta is (at alpha=0.2 about 2%
    # of draws sit on that cap, 1 - 6e-8, which alone is a KS distance of ~0.02).
    reference = np.random.default_rng(0).beta(alpha, alpha, count).astype(np.float32)
    reference = torch.from_numpy(np.minimum(reference, np.nextafter(np.float32(1),
                                                                    np.float32(0)))).double()
    grid = torch.sort(torch.cat([draws, reference])).values
    ours = torch.searchsorted(torch.sort(draws).values, grid, right=True) / count
    theirs = torch.searchsorted(torch.sort(reference).values, grid, right=True) / count
    assert (ours - theirs).abs().max().item() < 1.95 * math.sqrt(2 / count)
    # And a clearly different alpha is told apart.
    other = torch.from_numpy(np.random.default_rng(0).beta(alpha * 2, alpha * 2, count))
    theirs = torch.searchsorted(torch.sort(other).values, grid, right=True) / count
    assert (ours - theirs).abs().max().item() > 1.95 * math.sqrt(2 / count)


def test_lambda_draws_repeat_with_the_generator_and_ignore_global_rng():
    first = sample_beta(0.2, torch.Generator().manual_seed(7), count=5)
    torch.manual_seed(999)
    second = sample_beta(0.2, torch.Generator().manual_seed(7), count=5)
    assert torch.equal(first, second)
    state = torch.get_rng_state()
    sample_beta(0.2, torch.Generator().manual_seed(7))
    assert torch.equal(state, torch.get_rng_state())  # the global RNG is untouched


def test_soft_target_cross_entropy_equals_the_weighted_sum_of_two_losses():
    logits = torch.randn(6, 10, generator=torch.Generator().manual_seed(3))
    a, b = torch.tensor([0, 1, 2, 3, 4, 5]), torch.tensor([9, 8, 7, 6, 5, 4])
    lam = 0.35
    targets = lam * one_hot(a, 10) + (1 - lam) * one_hot(b, 10)
    expected = lam * F.cross_entropy(logits, a) + (1 - lam) * F.cross_entropy(logits, b)
    assert soft_target_cross_entropy(logits, targets).item() == pytest.approx(expected.item(),
                                                                                rel=1e-6)


def test_mixers_return_rows_that_sum_to_one_and_keep_shapes():
    images, labels = batch()
    guide = ModelGuide(build_model("resnet18", 10))  # for the model-guided mixers
    for name in mixer_names():
        mixer = build_mixer(name, 10, 1.0)
        mixer.use_model(guide)  # a no-op for the others
        mixed = mixer(images, labels, torch.Generator().manual_seed(2))
        assert mixed.images.shape == images.shape
        assert mixed.targets.shape == (8, 10)
        assert torch.allclose(mixed.targets.sum(1), torch.ones(8))


def test_registry_refuses_duplicates_and_unknown_names():
    with pytest.raises(ValueError, match="already registered"):
        register_mixer("mixup")(type("Again", (Mixer,), {}))
    with pytest.raises(ValueError, match=re.escape(f"expected one of {', '.join(mixer_names())}")):
        build_mixer("manifold", 10, 1.0)
