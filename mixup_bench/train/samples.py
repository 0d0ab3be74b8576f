"""samples.png: a grid of mixed training images, so a reader sees what the network saw."""

from __future__ import annotations

from pathlib import Path

import torch

from ..data import DeviceLoader, Split
from ..mixing import Mixer
from .metrics import MetricsLog


def save_samples(loader: DeviceLoader, mixer: Mixer, seed: int, run_dir: Path,
                 metrics: MetricsLog, mean: tuple[float, ...], std: tuple[float, ...],
                 count: int = 32) -> None:
    """A grid of mixed training images as samples.png and an image for every logger.

    Uses its own generators so the training streams are untouched.
    """
    from torchvision.utils import make_grid, save_image

    generator = torch.Generator(device=loader.generator.device).manual_seed(seed + 7919)
    mix_generator = torch.Generator().manual_seed(seed + 7919)
    images = loader.split.images[:count]
    sample_loader = DeviceLoader(Split(images, loader.split.labels[:count]), count, train=True,
                                 mean=mean, std=std, generator=generator)
    batch_images, batch_labels = next(iter(sample_loader))
    mixed = mixer(batch_images, batch_labels, mix_generator).images.float()
    mean_tensor = torch.tensor(mean, device=mixed.device).view(1, 3, 1, 1)
    std_tensor = torch.tensor(std, device=mixed.device).view(1, 3, 1, 1)
    grid = make_grid((mixed * std_tensor + mean_tensor).clamp(0, 1).cpu(), nrow=8, padding=2)
    save_image(grid, run_dir / "samples.png")
    metrics.add_image("samples", grid.mul(255).round().byte().permute(1, 2, 0).numpy())
