"""Every static (pixel-space) mixing method: what each promises, checked on all of them.

"Indicator" batches make each image's share of every mixed pixel readable:
image i carries a channel that is 1 on image i and 0 on every other image
(plus 3 channels of texture for the methods that look at the content), so
the mean of channel i over a mixed image is image i's real share of its
pixels, which must equal the target's weight for label i.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_module
from omegaconf import OmegaConf

from mixup_bench.config import validate
from mixup_bench.errors import ConfigError
from mixup_bench.mixing import build_mixer, mixer_names
from mixup_bench.mixing.saliencymix import saliency_peaks
from mixup_bench.models import model_names

from .test_mixing_variants import ks_critical, ks_distance

# Registered methods that do not mix in pixel space from the batch alone: no mixing, mixing
# inside the network, and the mixers guided by the model being trained.
NOT_PIXEL_SPACE = {"none", "manifold_mixup", "attentivemix", "puzzlemix"}
STATIC = sorted(set(mixer_names()) - NOT_PIXEL_SPACE)
NEW = ("saliencymix", "gridmix", "smoothmix")
TEXTURE = 3  # channels of texture before the indicator channels


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def indicator_batch(count: int, size: int = 32, seed: int = 0):
    """(images, labels): channel TEXTURE + i is 1 on image i, 0 elsewhere; labels arange."""
    texture = torch.rand(count, TEXTURE, size, size, generator=generator(seed))
    indicators = torch.eye(count).view(count, count, 1, 1).expand(-1, -1, size, size)
    return torch.cat([texture, indicators], dim=1).contiguous(), torch.arange(count)


def test_the_static_methods_are_all_found():
    assert set(NEW) | {"mixup", "cutmix", "mixup_cutmix", "fmix", "resizemix"} <= set(STATIC)


@pytest.mark.parametrize("name", STATIC)
@pytest.mark.parametrize("lam_per", ["batch", "sample"])
def test_each_target_weight_is_its_images_real_share_of_the_pixels(name, lam_per):
    count = 8
    images, labels = indicator_batch(count)
    for seed in range(3):
        batch = build_mixer(name, count, 1.0, lam_per=lam_per)(images, labels, generator(seed))
        shares = batch.images[:, TEXTURE:].mean(dim=(2, 3))  # (rows, images)
        assert torch.allclose(batch.targets, shares, atol=2e-6), (name, seed)
        assert torch.allclose(batch.targets.sum(dim=1), torch.ones(count), atol=1e-6)
        assert bool((batch.targets >= 0).all())
        # lambda (lams per row, else lam for the batch) is the own share of every row that got
        # another image (a row that is its own partner keeps all of its pixels).
        own = batch.targets.diagonal()
        mixed_rows = own < 1
        lams = batch.lams if batch.lams is not None else torch.full_like(own, batch.lam)
        assert torch.allclose(lams[mixed_rows], own[mixed_rows], atol=2e-6)


@pytest.mark.parametrize("name", STATIC)
@pytest.mark.parametrize("lam_per", ["batch", "sample"])
def test_inputs_are_never_changed_in_place(name, lam_per):
    images, labels = indicator_batch(8)
    before, labels_before = images.clone(), labels.clone()
    batch = build_mixer(name, 8, 1.0, lam_per=lam_per)(images, labels, generator(1))
    assert torch.equal(images, before) and torch.equal(labels, labels_before)
    assert batch.images.data_ptr() != images.data_ptr()


@pytest.mark.parametrize("name", STATIC)
@pytest.mark.parametrize("lam_per", ["batch", "sample"])
def test_the_same_seed_gives_the_same_batch_and_another_seed_another(name, lam_per):
    images, labels = indicator_batch(8)
    mixer = build_mixer(name, 8, 1.0, lam_per=lam_per)
    first, again = mixer(images, labels, generator(3)), mixer(images, labels, generator(3))
    other = mixer(images, labels, generator(4))
    assert torch.equal(first.images, again.images) and torch.equal(first.targets, again.targets)
    assert first.lam == again.lam
    assert not torch.equal(first.images, other.images)


# --- lambda's distribution, per new method ---------------------------------------------


def numpy_beta(alpha: float, count: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).beta(alpha, alpha, count)


@pytest.mark.parametrize("alpha", [0.2, 1.0])
def test_saliencymix_boxes_follow_the_beta_around_a_centred_peak(alpha):
    """Every partner's peak is its one bright pixel at the centre, so no box is clipped: the
    pasted side is int(H sqrt(1 - lam)) and the own share 1 - side^2 / H^2."""
    count, size = 1500, 32
    images = torch.zeros(count, 1, size, size)
    images[:, :, size // 2, size // 2] = 1.0
    rows, cols = saliency_peaks(images[:2])
    assert rows.tolist() == cols.tolist() == [size // 2] * 2
    batch = build_mixer("saliencymix", 10, alpha, lam_per="sample")(
        images, torch.arange(count) % 10, generator(0))
    side = np.floor(size * np.sqrt(1 - numpy_beta(alpha, 20000)))
    reference = 1 - side ** 2 / size ** 2
    assert ks_distance(batch.lams, reference) < ks_critical(count, 20000)
    wrong = 1 - np.floor(size * np.sqrt(1 - numpy_beta(4.0, 20000))) ** 2 / size ** 2
    assert ks_distance(batch.lams, wrong) > ks_critical(count, 20000)  # the check can fail


def test_saliencymix_centres_each_rows_box_on_its_own_partners_peak():
    """Not one box for the batch (OpenMixup's): each partner's bright pixel is elsewhere."""
    count, size = 6, 32
    images = torch.zeros(count, 1, size, size)
    spots = [(4 + 4 * row, 27 - 4 * row) for row in range(count)]
    for row, (y, x) in enumerate(spots):
        images[row, 0, y, x] = 1.0
    batch = build_mixer("saliencymix", count, 0.5)(images, torch.arange(count), generator(2))
    for row in range(count):
        partner = int(batch.targets[row].argmax()) if batch.targets[row, row] < 0.5 else None
        pasted = batch.images[row, 0] != images[row, 0]
        if partner is None or not bool(pasted.any()):
            continue
        y, x = spots[partner]
        assert batch.images[row, 0, y, x] == 1.0  # the partner's peak is inside the box


def test_gridmix_holes_follow_the_beta_with_a_fixed_grid():
    """cut_area 1 and aspect 1 with 4 holes across 32 pixels: 8-pixel patches, holes of side
    clip(int(8 sqrt(1 - lam)), 1, 7), so the own share is 1 - 16 hole^2 / 1024."""
    count, alpha = 1500, 0.2
    images = torch.zeros(count, 1, 32, 32)
    batch = build_mixer("gridmix", 10, alpha, lam_per="sample", n_holes=4, cut_area=1.0,
                        cut_aspect=1.0)(images, torch.arange(count) % 10, generator(0))
    hole = np.clip(np.floor(8 * np.sqrt(1 - numpy_beta(alpha, 20000))), 1, 7)
    reference = 1 - 16 * hole ** 2 / 1024
    assert ks_distance(batch.lams, reference) < ks_critical(count, 20000)


def test_smoothmix_lambda_sets_the_blob_and_unclipped_blobs_have_mean_one_minus_lambda():
    count, size, alpha = 4000, 32, 0.5
    mixer = build_mixer("smoothmix", 10, alpha, lam_per="sample")
    draws = mixer.draw(count, size, size, generator(0))
    lam = mixer.draw_lambda(alpha, generator(0), count)  # the first draw of the same stream
    centre_y, centre_x, sigma = draws["blob"].double().unbind(1)
    expected_sigma = ((1 - lam.double()) * size * size / (2 * math.pi)).sqrt().clamp(min=1e-3)
    assert torch.allclose(sigma, expected_sigma, rtol=1e-6)
    margin = torch.stack([centre_y, size - 1 - centre_y, centre_x, size - 1 - centre_x]).amin(0)
    inside = (margin > 4 * sigma) & (sigma > 1)  # blobs the border does not cut
    assert int(inside.sum()) > 100
    assert torch.allclose(draws["lams"].double()[inside], lam.double()[inside], atol=1e-4)
    # Lambda has an effect: a smaller lambda gives a larger partner share.
    order = torch.argsort(lam)
    low, high = order[: count // 4], order[-count // 4:]
    assert float(draws["lams"][low].mean()) < float(draws["lams"][high].mean()) - 0.2


def test_smoothmix_weights_the_partner_by_the_mask_not_the_own_image():
    """OpenMixup gives the mask's mean to the OWN label; the partner must get it."""
    images, labels = indicator_batch(8)
    batch = build_mixer("smoothmix", 8, 0.5, lam_per="sample")(images, labels, generator(5))
    for row in range(8):
        partner = [c for c in range(8) if c != row and batch.targets[row, c] > 0]
        if not partner:
            continue
        share = float(batch.images[row, TEXTURE + partner[0]].mean())
        assert float(batch.targets[row, partner[0]]) == pytest.approx(share, abs=2e-6)
        assert float(batch.targets[row, row]) == pytest.approx(1 - share, abs=2e-6)


# --- options and configs --------------------------------------------------------------


@pytest.mark.parametrize("name, options, expected", [
    ("gridmix", {"n_holes": 0}, "aug.n_holes=0: expected an integer in [1, 1024] or a "
                                "[min, max] pair of them"),
    ("gridmix", {"n_holes": [6, 2]}, "aug.n_holes=[6, 2]: expected min <= max"),
    ("gridmix", {"n_holes": 2.5}, "aug.n_holes=2.5: expected an integer in [1, 1024]"),
    ("gridmix", {"cut_area": [0.5, 1.5]}, "aug.cut_area=[0.5, 1.5]: expected a number in"),
    ("gridmix", {"cut_aspect": "wide"}, "aug.cut_aspect='wide': expected a number in"),
    ("gridmix", {"hole_aspect": [1, 2]}, "aug.hole_aspect=[1, 2]: expected a number in"),
    ("gridmix", {"decay_power": 3}, "aug.decay_power=3: expected an option of aug=gridmix ("),
    ("smoothmix", {"n_holes": 3}, "aug.n_holes=3: expected an option of aug=smoothmix ("),
    ("saliencymix", {"scale_min": 0.2}, "aug.scale_min=0.2: expected an option of "
                                        "aug=saliencymix ("),
    ("saliencymix", {"lam_per": "row"}, "aug.lam_per='row': expected batch or sample"),
])
def test_bad_options_are_refused_with_one_line(name, options, expected):
    with pytest.raises(ConfigError) as error:
        build_mixer(name, 10, 1.0, **options)
    assert str(error.value).startswith(expected) and "\n" not in str(error.value)


@pytest.mark.parametrize("name, alpha", [("saliencymix", 0.2), ("gridmix", 0.2),
                                         ("smoothmix", 0.5)])
def test_composed_from_the_shipped_config_with_openmixups_alpha(name, alpha):
    with initialize_config_module(config_module="mixup_bench.conf", version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"aug={name}"])
    config = OmegaConf.to_container(cfg, resolve=True)
    assert validate(config, model_names(), mixer_names()) == []
    assert config["alpha"] == alpha
    options = {key: value for key, value in config["aug"].items() if key != "name"}
    mixer = build_mixer(config["aug"]["name"], 10, config["alpha"], **options)
    images, labels = torch.randn(4, 3, 32, 32, generator=generator(0)), torch.arange(4)
    assert mixer(images, labels, generator(1)).method == name
    if name == "gridmix":
        assert (mixer.n_holes, mixer.cut_area, mixer.cut_aspect, mixer.hole_aspect) == (
            (2, 6), (0.5, 1.0), (0.5, 2.0), 1.0)
