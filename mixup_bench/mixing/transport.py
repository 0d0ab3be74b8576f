"""PuzzleMix's transport step (Kim et al., ICML 2020, section 3.2): move salient blocks to
where the mask shows them.

After the labelling, each image is cut into t x t blocks; a block of image
x may move to another place, paying eps * (squared grid distance) and
gaining its saliency if the mask shows x there. The paper solves this with
an approximate, batched assignment: every source block picks its cheapest
destination; where several pick the same one, the cheapest source wins and
each loser's cost for that destination rises by 1; after t rounds the
winners move. Done batched on the device here, with two changes to the
paper's code, both so that every pixel of the mixed image stays a pixel of
its image (the target weights are then each image's real share):
- a destination no source won keeps its own block (the paper's code leaves
  it zero, a grey block that neither label accounts for);
- the winner is the cheapest source among those that picked the
  destination (the paper's code takes the minimum of plan * cost over all
  sources, where a non-picking source counts 0, so a destination whose
  pickers all have positive cost gets no winner).
"""

from __future__ import annotations

import torch


def grid_distances(blocks: int, device: torch.device) -> torch.Tensor:
    """(t*t, t*t) squared distances between block positions, divided by (t - 1)^2."""
    rows, cols = torch.meshgrid(torch.arange(blocks, device=device),
                                torch.arange(blocks, device=device), indexing="ij")
    places = torch.stack([rows.flatten(), cols.flatten()], 1).float()
    return torch.cdist(places, places).square() / max(blocks - 1, 1) ** 2


def transport_sources(shown: torch.Tensor, saliency: torch.Tensor, eps: float) -> torch.Tensor:
    """(N, T) long: for each destination block, the block of the same image moved there.

    shown (N, T) bool: where the mask shows this image; saliency (N, T) per block.
    """
    count, places = shown.shape
    blocks = round(places ** 0.5)
    cost = eps * grid_distances(blocks, shown.device) - saliency.unsqueeze(2) * \
        shown.unsqueeze(1).float()  # [row, source, destination]
    sources = torch.arange(places, device=shown.device).view(1, -1).expand(count, -1)
    winners = sources
    for _ in range(blocks):
        choice = cost.argmin(dim=2)  # (N, T) each source's destination
        picked = torch.zeros_like(cost, dtype=torch.bool).scatter_(2, choice.unsqueeze(2), True)
        fight = torch.where(picked, cost, torch.full_like(cost, float("inf")))
        best, winner = fight.min(dim=1)  # (N, T) per destination
        won = torch.isfinite(best)
        winners = torch.where(won, winner, sources)
        lost = picked & ~(torch.arange(places, device=shown.device).view(1, -1, 1)
                          == winner.unsqueeze(1))
        cost = cost + lost.float()
    return winners


def move_blocks(images: torch.Tensor, sources: torch.Tensor, blocks: int) -> torch.Tensor:
    """images (N, C, H, W) with destination block d replaced by block sources[:, d]."""
    count, channels, height, width = images.shape
    bh, bw = height // blocks, width // blocks
    cut = images.reshape(count, channels, blocks, bh, blocks, bw).permute(0, 2, 4, 1, 3, 5)
    cut = cut.reshape(count, blocks * blocks, channels, bh, bw)
    index = sources.view(count, -1, 1, 1, 1).expand(-1, -1, channels, bh, bw)
    moved = cut.gather(1, index).reshape(count, blocks, blocks, channels, bh, bw)
    return moved.permute(0, 3, 1, 4, 2, 5).reshape(count, channels, height, width)
