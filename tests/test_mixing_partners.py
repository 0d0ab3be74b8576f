"""mixing variants: dataset partners, Mixup-or-CutMix, and what every variant promises."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from mixup_bench.data import DeviceLoader, Split
from mixup_bench.mixing import build_mixer
from mixup_bench.mixing.ops import box_from_centre, box_lambda, one_hot

from .test_mixing_variants import ks_critical, ks_distance

COUNT = 20000


def constant_split(count=50, num_classes=10, size=8):
    """uint8 images where image k is filled with the value k: a pixel names its source."""
    images = torch.arange(count, dtype=torch.uint8).view(count, 1, 1, 1).expand(
        count, 3, size, size).clone()
    return Split(images, torch.arange(count) % num_classes)


def identity_loader(split, seen=None):
    """A loader whose augment is the identity (recording its input) and normalise a cast."""

    def augment(images):
        if seen is not None:
            seen.append(images.clone())
        return images

    return SimpleNamespace(split=split, augment=augment, normalise=lambda images: images.float(),
                           generator=None)


# --- aug.partner=dataset ----------------------------------------------------------------


def test_dataset_partners_are_training_images_with_their_labels():
    split = constant_split()
    mixer = build_mixer("cutmix", 10, 1.0, partner="dataset", lam_min=0.0)
    mixer.bind(identity_loader(split))
    images, labels = split.images[:8].float(), split.labels[:8]
    generator = torch.Generator().manual_seed(0)
    checked = 0
    for _ in range(20):
        mixed = mixer(images, labels, generator)
        for row in range(8):
            values = mixed.images[row].unique().tolist()
            others = [value for value in values if value != row]
            if not others:  # empty box, or a partner equal to itself
                continue
            (partner,) = others  # the pasted pixels are one training image's
            expected = (mixed.lam * one_hot(labels[row], 10)
                        + (1 - mixed.lam) * one_hot(split.labels[int(partner)], 10))
            assert torch.allclose(mixed.targets[row], expected, atol=1e-6)
            checked += 1
    assert checked > 50


def test_dataset_partners_are_uniform_over_the_whole_training_set():
    split, seen = constant_split(), []
    mixer = build_mixer("mixup", 10, 0.2, partner="dataset")
    mixer.bind(identity_loader(split, seen))
    images, labels = split.images[:8].float(), split.labels[:8]  # the batch holds images 0..7
    generator = torch.Generator().manual_seed(1)
    for _ in range(300):
        mixer(images, labels, generator)
    drawn = torch.cat([batch[:, 0, 0, 0] for batch in seen]).long()
    counts = torch.bincount(drawn, minlength=50).double()
    assert len(drawn) == 2400 and (counts > 0).all()  # every image, not only the batch's
    expected = len(drawn) / 50
    chi_square = ((counts - expected) ** 2 / expected).sum().item()
    assert chi_square < 85.4  # chi-square with 49 degrees of freedom at the 0.1% level


def test_dataset_partners_through_the_device_loader_leave_its_stream_alone():
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8, generator=generator)
    split = Split(images, torch.arange(40) % 10)
    loader = DeviceLoader(split, 8, train=True, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25),
                          generator=torch.Generator().manual_seed(3))
    batch_images, batch_labels = next(iter(loader))
    state = loader.generator.get_state()
    for name in ("mixup", "cutmix", "mixup_cutmix"):
        mixer = build_mixer(name, 10, 1.0, partner="dataset", lam_per="sample")
        mixer.bind(loader)
        first = mixer(batch_images, batch_labels, torch.Generator().manual_seed(5))
        again = mixer(batch_images, batch_labels, torch.Generator().manual_seed(5))
        assert first.images.shape == batch_images.shape and first.images.dtype == torch.float32
        assert torch.equal(first.images, again.images)  # crops and flips come from the mix seed
        assert torch.allclose(first.targets.sum(1), torch.ones(8))
    assert torch.equal(loader.generator.get_state(), state)


def test_dataset_partners_need_the_bound_loader():
    images, labels = constant_split().images[:4].float(), torch.arange(4)
    with pytest.raises(RuntimeError, match="bind"):
        build_mixer("mixup", 10, 1.0, partner="dataset")(images, labels, torch.Generator())


# --- mixup_cutmix -------------------------------------------------------------------------


def test_mixup_cutmix_switch_frequency_and_each_branchs_lambda():
    images, labels = torch.randn(2, 1, 32, 32), torch.tensor([0, 1])
    mixer = build_mixer("mixup_cutmix", 10, 0.2, cutmix_alpha=2.0, switch_prob=0.3)
    generator = torch.Generator().manual_seed(0)
    lams = {"mixup": [], "cutmix": []}
    for _ in range(3000):
        mixed = mixer(images, labels, generator)
        lams[mixed.method].append(mixed.lam)
    cutmix_share = len(lams["cutmix"]) / 3000
    assert cutmix_share == pytest.approx(0.3, abs=4 * math.sqrt(0.3 * 0.7 / 3000))
    # Mixup branch: Beta(alpha) itself. CutMix branch: Beta(cutmix_alpha) through a clipped
    # box with a uniform centre, simulated with NumPy.
    mixup_reference = np.random.default_rng(0).beta(0.2, 0.2, COUNT).astype(np.float32)
    mixup_reference = np.minimum(mixup_reference, np.nextafter(np.float32(1), np.float32(0)))
    assert ks_distance(lams["mixup"], mixup_reference) < ks_critical(len(lams["mixup"]), COUNT)
    rng = np.random.default_rng(1)

    def cutmix_reference(alpha):
        return np.array([box_lambda(box_from_centre(32, 32, lam, *rng.integers(0, 32, 2)), 32, 32)
                         for lam in rng.beta(alpha, alpha, 5000)])

    n = len(lams["cutmix"])
    assert ks_distance(lams["cutmix"], cutmix_reference(2.0)) < ks_critical(n, 5000)
    assert ks_distance(lams["cutmix"], cutmix_reference(0.2)) > ks_critical(n, 5000)


def test_mixup_cutmix_per_example_switches_per_row():
    count = 64
    images = torch.arange(count, dtype=torch.float32).view(count, 1, 1, 1).expand(count, 3, 16,
                                                                                   16).clone()
    labels = torch.arange(count) % 10
    mixer = build_mixer("mixup_cutmix", 10, 1.0, switch_prob=0.5, lam_per="sample")
    generator = torch.Generator().manual_seed(2)
    pasted_rows = 0
    for _ in range(20):
        mixed = mixer(images, labels, generator)
        assert torch.allclose(mixed.targets.sum(1), torch.ones(count))
        # A pasted row holds only whole numbers (two source values); a blended one does not.
        whole = (mixed.images == mixed.images.round()).flatten(1).all(1)
        pasted_rows += int(whole.sum())
    assert pasted_rows / (20 * count) == pytest.approx(0.5, abs=0.06)


# --- what every variant promises ------------------------------------------------------------

VARIANTS = [
    ("none", {"label_smoothing": 0.1}),
    ("mixup", {"lam_min": 0.3}),
    ("mixup", {"lam_fold": True, "lam_per": "sample", "label_smoothing": 0.1}),
    ("mixup", {"partner": "dataset", "alpha_schedule": "cosine_decay", "alpha_final": 0.1}),
    ("cutmix", {"lam_per": "sample", "lam_min": 0.2}),
    ("cutmix", {"partner": "dataset", "lam_fold": True}),
    ("mixup_cutmix", {}),
    ("mixup_cutmix", {"lam_per": "sample", "partner": "dataset", "off_last_epochs": 1}),
]


@pytest.mark.parametrize("name, options", VARIANTS)
def test_variants_keep_inputs_and_global_rng_repeat_and_give_rows_summing_to_one(name, options):
    split = constant_split(size=32)
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(8)
    before = images.clone()
    mixer = build_mixer(name, 10, 1.0, **options)
    mixer.bind(identity_loader(split))
    mixer.set_epoch(2, 3)
    state = torch.get_rng_state()
    first = mixer(images, labels, torch.Generator().manual_seed(4))
    assert torch.equal(state, torch.get_rng_state())
    assert torch.equal(images, before)
    second = mixer(images, labels, torch.Generator().manual_seed(4))
    assert torch.equal(first.images, second.images) and torch.equal(first.targets, second.targets)
    assert first.images.shape == images.shape and first.targets.shape == (8, 10)
    assert torch.allclose(first.targets.sum(1), torch.ones(8))
    if first.lams is not None:
        assert first.lams.shape == (8,)
