"""FMix and ResizeMix: lambda is the real mixed fraction, their draws, options and configs.

Most checks use "labelled" batches: image i is filled with the value i and
has label i, so the source of every mixed pixel, and the partner of every
row, can be read off the mixed image.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from mixup_bench.config import validate
from mixup_bench.errors import ConfigError
from mixup_bench.mixing import build_mixer, mixer_names
from mixup_bench.mixing.ops import one_hot
from mixup_bench.models import model_names

from .test_mixing_variants import ks_critical, ks_distance, numpy_beta

METHODS = ("fmix", "resizemix")


def labelled_batch(count: int, size: int = 32, channels: int = 3):
    values = torch.arange(count, dtype=torch.float32)
    return values.view(-1, 1, 1, 1).expand(count, channels, size, size).clone(), torch.arange(count)


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def sources(image: torch.Tensor, row: int) -> tuple[torch.Tensor, int]:
    """(H, W) bool mask of the pixels that are row's own, and the partner's index (value)."""
    own = ((image - row).abs() < 0.25).all(dim=0)
    partner = round(float(image[:, ~own].mean())) if not own.all() else row
    # Every pixel comes from one of the two images, in every channel.
    assert (own | ((image - partner).abs() < 0.25).all(dim=0)).all()
    return own, partner


def own_masks(name: str, count: int, seed: int = 0, **options) -> list[torch.Tensor]:
    """The own-pixel masks of the rows that got a partner other than themselves."""
    images, labels = labelled_batch(count, channels=1)
    mixed = build_mixer(name, count, 1.0, **options)(images, labels, generator(seed))
    found = [sources(mixed.images[row], row) for row in range(count)]
    return [own for row, (own, partner) in enumerate(found) if partner != row]


# --- lambda is what was mixed -------------------------------------------------------


@pytest.mark.parametrize("name", METHODS)
@pytest.mark.parametrize("lam_per", ["batch", "sample"])
def test_lambda_is_the_real_fraction_of_own_pixels_and_weights_the_targets(name, lam_per):
    count = 8
    images, labels = labelled_batch(count)
    for seed in range(4):
        mixed = build_mixer(name, count, 1.0, lam_per=lam_per)(images, labels, generator(seed))
        assert mixed.method == name and mixed.images.shape == images.shape
        if lam_per == "batch":
            assert mixed.lams is None
            lams = torch.full((count,), mixed.lam)
        else:
            lams = mixed.lams
            assert lams.shape == (count,) and mixed.lam == pytest.approx(float(lams.mean()))
        masks = []
        for row in range(count):
            own, partner = sources(mixed.images[row], row)
            lam = float(lams[row])
            expected = lam * one_hot(labels[row], count) + (1 - lam) * one_hot(labels[partner],
                                                                              count)
            assert torch.allclose(mixed.targets[row], expected, atol=1e-6)
            if partner != row:
                assert float(own.double().mean()) == pytest.approx(lam, abs=1e-7)
                masks.append(own)
        assert masks, "every row was its own partner"
        if lam_per == "batch" and name == "fmix":  # one mask for the whole batch
            assert all(torch.equal(mask, masks[0]) for mask in masks)
        if name == "resizemix":  # the partner's part is one rectangle
            for own in masks:
                rows, cols = (~own).any(dim=1).nonzero(), (~own).any(dim=0).nonzero()
                box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
                assert int(box) == int((~own).sum())


@pytest.mark.parametrize("lam_per", ["batch", "sample"])
def test_resizemix_pastes_the_whole_partner_resized(lam_per):
    image = torch.randn(3, 32, 32, generator=generator(0))
    images = image.expand(6, -1, -1, -1).clone()  # every partner has the same content
    mixed = build_mixer("resizemix", 10, 1.0, lam_per=lam_per)(images, torch.arange(6),
                                                                 generator(1))
    lams = mixed.lams if lam_per == "sample" else torch.full((6,), mixed.lam)
    sides = {round(math.sqrt((1 - float(lam)) * 32 * 32)) for lam in lams}
    assert len(sides) >= 3 if lam_per == "sample" else len(sides) == 1  # own sizes per row
    for row in range(6):
        side = round(math.sqrt((1 - float(lams[row])) * 32 * 32))
        changed = (mixed.images[row] != image).any(dim=0).nonzero()
        top, left = int(changed[:, 0].min()), int(changed[:, 1].min())
        assert 0 <= top <= 32 - side and 0 <= left <= 32 - side
        resized = F.interpolate(image[None], size=(side, side), mode="bilinear",
                                align_corners=False)[0]
        pasted = mixed.images[row, :, top:top + side, left:left + side]
        assert torch.allclose(pasted, resized, atol=1e-6)
        outside = mixed.images[row].clone()
        outside[:, top:top + side, left:left + side] = image[:, top:top + side, left:left + side]
        assert torch.equal(outside, image)


# --- distributions ------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_fmix_mask_means_follow_the_beta(alpha):
    count = 2000
    images, labels = labelled_batch(count, channels=1)
    mixer = build_mixer("fmix", 10, alpha, lam_per="sample")
    lams = mixer(images, labels % 10, generator(0)).lams
    assert torch.equal(lams * 1024, (lams * 1024).round())  # whole pixels of 32 x 32
    reference = numpy_beta(alpha, 20000, seed=1)
    assert ks_distance(lams, reference) < ks_critical(count, 20000)


def test_fmix_follows_lambda_shaping():
    images, labels = labelled_batch(500, channels=1)
    lams = build_mixer("fmix", 10, 1.0, lam_per="sample", lam_fold=True)(
        images, labels % 10, generator(0)).lams
    assert float(lams.min()) >= 0.5 and float(lams.max()) > 0.9


def test_resizemix_scales_are_uniform_over_the_range():
    count = 2000
    images, labels = labelled_batch(count, channels=1)
    lams = build_mixer("resizemix", 10, 1.0, lam_per="sample")(images, labels % 10,
                                                                generator(0)).lams
    tau = ((1 - lams.double()) * 32 * 32).sqrt() / 32  # side / 32: tau rounded to whole pixels
    assert torch.allclose(tau * 32, (tau * 32).round(), atol=1e-4)
    assert float(tau.min()) == pytest.approx(round(0.1 * 32) / 32)  # the range's ends are hit
    assert float(tau.max()) == pytest.approx(round(0.8 * 32) / 32)
    assert float(tau.mean()) == pytest.approx(0.45, abs=0.02)
    assert float(tau.std()) == pytest.approx(0.7 / math.sqrt(12), abs=0.02)
    narrow = build_mixer("resizemix", 10, 1.0, lam_per="sample", scale_min=0.5, scale_max=0.5)
    lams = narrow(images[:50], labels[:50] % 10, generator(0)).lams
    assert torch.equal(lams, torch.full((50,), 1 - 16 * 16 / 1024))


def test_resizemix_positions_are_uniform_inside_the_image():
    masks = own_masks("resizemix", 400, lam_per="sample", scale_min=0.5, scale_max=0.5)
    corners = torch.tensor([[int((~own).any(dim=1).nonzero().min()),
                             int((~own).any(dim=0).nonzero().min())] for own in masks])
    assert int(corners.min()) == 0 and int(corners.max()) == 32 - 16  # every place fits
    for mean in corners.double().mean(dim=0):  # 17 places each way, sd of the mean ~0.25
        assert float(mean) == pytest.approx(8.0, abs=0.75)


def test_fmix_masks_are_low_frequency():
    def transitions(masks: list[torch.Tensor]) -> int:
        return sum(int((mask[:, 1:] != mask[:, :-1]).sum()) for mask in masks)

    masks = own_masks("fmix", 50, lam_per="sample")
    shuffle = generator(7)
    shuffled = [mask.flatten()[torch.randperm(mask.numel(), generator=shuffle)].view_as(mask)
                for mask in masks]  # a random mask with the same mean
    assert transitions(masks) < 0.3 * transitions(shuffled)
    rough = own_masks("fmix", 50, lam_per="sample", decay_power=1.0)
    assert transitions(masks) < transitions(rough)


# --- inputs, seeds, options, configs ------------------------------------------------


# Inputs never changed in place, and seeding: tests/test_mixing_static.py (every method).


@pytest.mark.parametrize("name, options, expected", [
    ("fmix", {"decay_power": 0}, "aug.decay_power=0: expected a number > 0"),
    ("fmix", {"decay_power": -1.5}, "aug.decay_power=-1.5: expected a number > 0"),
    ("fmix", {"decay_power": "abc"}, "aug.decay_power='abc': expected a number > 0"),
    ("fmix", {"decay_power": True}, "aug.decay_power=True: expected a number > 0"),
    ("resizemix", {"scale_min": 0.9, "scale_max": 0.5},
     "aug.scale_min=0.9: expected a number <= aug.scale_max=0.5"),
    ("resizemix", {"scale_min": 0}, "aug.scale_min=0: expected a number in (0, 1)"),
    ("resizemix", {"scale_max": 1.0}, "aug.scale_max=1.0: expected a number in (0, 1)"),
    ("resizemix", {"scale_max": None}, "aug.scale_max=None: expected a number in (0, 1)"),
])
def test_bad_options_are_refused_with_one_line(name, options, expected):
    with pytest.raises(ConfigError) as error:
        build_mixer(name, 10, 1.0, **options)
    assert str(error.value) == expected


@pytest.mark.parametrize("name, key, own", [("fmix", "scale_min", "decay_power"),
                                            ("resizemix", "decay_power", "scale_max"),
                                            ("cutmix", "decay_power", "partner")])
def test_each_mixer_takes_only_its_own_options(name, key, own):
    with pytest.raises(ConfigError) as error:
        build_mixer(name, 10, 1.0, **{key: 0.5})
    message = str(error.value)
    assert message.startswith(f"aug.{key}=0.5: expected an option of aug={name} (")
    assert own in message and "\n" not in message


def test_summaries_give_the_effective_settings():
    assert build_mixer("fmix", 10, 1.0, decay_power=2).summary()["decay_power"] == 2.0
    summary = build_mixer("resizemix", 10, 1.0, lam_fold=True, scale_max=0.6).summary()
    assert summary["scale_min"] == 0.1 and summary["scale_max"] == 0.6
    # no Beta lambda: alpha, its schedules and the lambda shaping do not apply
    assert all(summary[key] is None for key in ("alpha", "alpha_schedule", "alpha_final",
                                                "lam_min", "lam_fold"))


@pytest.mark.parametrize("name", METHODS)
def test_registered_and_composed_from_the_shipped_config(name):
    assert name in mixer_names()
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"aug={name}"])
    config = OmegaConf.to_container(cfg, resolve=True)
    assert validate(config, model_names(), mixer_names()) == []
    options = {key: value for key, value in config["aug"].items() if key != "name"}
    mixer = build_mixer(config["aug"]["name"], 10, config["alpha"], **options)
    images, labels = torch.randn(4, 3, 32, 32, generator=generator(0)), torch.arange(4)
    mixed = mixer(images, labels, generator(1))
    assert mixed.method == name and torch.allclose(mixed.targets.sum(1), torch.ones(4))
    assert config["alpha"] == 1.0
    if name == "fmix":
        assert mixer.decay_power == 3.0
    else:
        assert (mixer.scale_min, mixer.scale_max) == (0.1, 0.8)


def test_the_ks_check_tells_a_wrong_beta_apart():
    # the distribution checks above can fail: Beta(0.4) is far from Beta(1) at these counts
    wrong = np.random.default_rng(2).beta(0.4, 0.4, 2000)
    assert ks_distance(torch.as_tensor(wrong), numpy_beta(1.0, 20000)) > ks_critical(2000, 20000)
