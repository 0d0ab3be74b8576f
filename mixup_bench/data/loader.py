"""Batches made on the training device from uint8 images: no workers, no per-image Python."""

from __future__ import annotations

import torch

from .types import Split


class DeviceLoader:
    """Shuffled, augmented, normalised batches made on the device from uint8 images.

    Augmentation: random crop with 4-pixel zero padding and a random horizontal
    flip, as torchvision's RandomCrop(32, padding=4) + RandomHorizontalFlip,
    done for the whole batch with one gather. Randomness comes only from the
    generator passed in, so an epoch repeats exactly given its state.
    """

    def __init__(self, split: Split, batch_size: int, *, train: bool, mean: tuple[float, ...],
                 std: tuple[float, ...], generator: torch.Generator | None = None,
                 channels_last: bool = False, padding: int = 4) -> None:
        self.split = split
        self.batch_size = min(batch_size, len(split)) if train else batch_size
        self.train = train
        self.generator = generator
        self.channels_last = channels_last
        self.padding = padding
        device = split.images.device
        self.mean = torch.tensor(mean, device=device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(std, device=device).view(1, 3, 1, 1) * 255

    def __len__(self) -> int:
        if self.train:  # drop the last partial batch: constant shapes, as in the references
            return len(self.split) // self.batch_size
        return -(-len(self.split) // self.batch_size)

    def normalise(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) -> normalised float32, channels_last if asked."""
        images = (images.float() - self.mean) / self.std
        if self.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        return images

    def augment(self, images: torch.Tensor) -> torch.Tensor:
        """Random crop (zero padding) and horizontal flip of a uint8 batch."""
        count, _, height, width = images.shape
        pad = self.padding
        device = images.device
        padded = torch.nn.functional.pad(images, (pad, pad, pad, pad))
        # Offsets in [0, 2*pad]: the top-left corner of each crop in the padded image.
        offsets = torch.randint(0, 2 * pad + 1, (2, count), generator=self.generator,
                                device=self.generator.device).to(device)
        rows = (torch.arange(height, device=device).view(1, height) + offsets[0].view(count, 1))
        cols = (torch.arange(width, device=device).view(1, width) + offsets[1].view(count, 1))
        flip = torch.rand(count, generator=self.generator,
                          device=self.generator.device).to(device) < 0.5
        cols = torch.where(flip.view(count, 1), cols.flip(1), cols)
        batch_index = torch.arange(count, device=device).view(count, 1, 1, 1)
        channel_index = torch.arange(3, device=device).view(1, 3, 1, 1)
        return padded[batch_index, channel_index, rows.view(count, 1, height, 1),
                      cols.view(count, 1, 1, width)]

    def __iter__(self):
        images, labels = self.split.images, self.split.labels
        if not self.train:
            for start in range(0, len(self.split), self.batch_size):
                end = start + self.batch_size
                yield self.normalise(images[start:end]), labels[start:end]
            return
        order = torch.randperm(len(self.split), generator=self.generator,
                               device=self.generator.device).to(images.device)
        for step in range(len(self)):
            index = order[step * self.batch_size:(step + 1) * self.batch_size]
            yield self.normalise(self.augment(images[index])), labels[index]
