"""PuzzleMix's block-wise labelling (Kim et al., ICML 2020, section 3): energy and graph cut.

Each image is split into b x b blocks; every block gets a label j in
0..n-1, the share of the row's OWN image in that block being m = j / (n - 1)
(n = aug.n_labels; 3 gives 0, 1/2, 1). The labelling minimises, per row,

  sum over blocks   m * S_partner + (1 - m) * S_own          (saliency lost)
                  + eta / b^2 * -log Binom(j; n - 1, lambda)  (the prior: the own
                                                                share near lambda)
  + sum over edges  (beta / (16 b) + gamma * D) * (j - j')^2 / (n - 1)^2
                                                             (label and data smoothness)

S: the input-gradient saliency pooled to blocks and normalised to sum 1 per
image. D: how much the pixels across the edge's boundary differ when its
two blocks come from different images (mean absolute difference of
neigh_size-pooled pixels, in [0, 1] units), folded into a symmetric edge
weight plus unaries exactly as the paper's code does for two images (exact
for binary labels up to a constant).

`labelling_costs` builds these terms batched on the device; `solve_labelling`
minimises them per row with GCO's alpha-beta swap (gco-wrapper, on the CPU,
the solver the paper uses): for n = 2 the swap is one exact min-cut, for n = 3
a local minimum (tests compare both with brute force on small grids). The
costs are scaled to integers here (GCO's float mode rescales int32 terms
and can overflow them; the paper's code passes int32 unaries with a float
pairwise matrix, which takes that path).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

INTEGER_SCALE = 2**16  # the largest unary or edge term per row, after scaling to integers


class LabellingCosts(NamedTuple):
    """Float costs of one batch, (N, b, b, n) unaries and (N, b-1, b) / (N, b, b-1) edges."""

    unary: torch.Tensor
    vertical: torch.Tensor  # between block (i, j) and (i + 1, j)
    horizontal: torch.Tensor  # between block (i, j) and (i, j + 1)


def block_saliency(saliency: torch.Tensor, blocks: int) -> torch.Tensor:
    """(N, H, W) -> (N, b, b): the saliency pooled to blocks, each image's summing to 1."""
    pooled = F.avg_pool2d(saliency.unsqueeze(1), saliency.shape[-1] // blocks).squeeze(1)
    return pooled / pooled.flatten(1).sum(1).clamp_min(1e-12).view(-1, 1, 1)


def boundary_differences(upper: torch.Tensor, lower: torch.Tensor, blocks: int,
                         neigh_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean |difference| across each block boundary when `upper`/left blocks come from `upper`
    and lower/right ones from `lower`: (N, b-1, b) vertical and (N, b, b-1) horizontal.

    Both are (N, C, H/neigh, W/neigh) pooled images; k pooled cells make one block side.
    """
    k = upper.shape[-1] // blocks
    across_rows = (upper[:, :, :-1, :] - lower[:, :, 1:, :])[:, :, k - 1::k, :]
    across_cols = (upper[:, :, :, :-1] - lower[:, :, :, 1:])[:, :, :, k - 1::k]
    vertical = F.avg_pool2d(across_rows.abs().mean(1), kernel_size=(1, k))
    horizontal = F.avg_pool2d(across_cols.abs().mean(1), kernel_size=(k, 1))
    return vertical, horizontal


def label_prior(lam: torch.Tensor, n_labels: int, eps: float = 1e-8) -> torch.Tensor:
    """(N, n): -log P(j own parts out of n - 1 | lambda), the binomial, for labels j = 0..n-1."""
    k = n_labels - 1
    j = torch.arange(n_labels, dtype=torch.float64, device=lam.device)
    binom = torch.tensor([math.comb(k, int(i)) for i in range(n_labels)], dtype=torch.float64,
                         device=lam.device)
    lam = lam.double().view(-1, 1)
    return -torch.log(binom * lam.pow(j) * (1 - lam).pow(k - j) + eps)


def labelling_costs(saliency: torch.Tensor, pixels: torch.Tensor, partner: torch.Tensor,
                    lam: torch.Tensor, blocks: int, n_labels: int, beta: float, gamma: float,
                    eta: float, neigh_size: int) -> LabellingCosts:
    """The energy's terms for each row (own image i, partner partner[i]), on the device.

    saliency (N, H, W); pixels (N, C, H, W) in [0, 1] units; lam (N,) the own weight.
    """
    block = pixels.shape[-1] // blocks
    neigh = min(neigh_size, block)
    own_saliency = block_saliency(saliency, blocks)
    partner_saliency = own_saliency[partner]
    pooled = F.avg_pool2d(pixels.float(), neigh)
    other = pooled[partner]
    smooth = beta / blocks / 16
    # diffs[a][c]: source a above/left of source c (0: partner, 1: own)
    sources = (other, pooled)
    diffs = [[boundary_differences(sources[a], sources[c], blocks, neigh) for c in (0, 1)]
             for a in (0, 1)]
    vertical = [[smooth * gamma * diffs[a][c][0] for c in (0, 1)] for a in (0, 1)]
    horizontal = [[smooth * gamma * diffs[a][c][1] for c in (0, 1)] for a in (0, 1)]
    # cost of the whole block from one source: the other's saliency lost, plus the data terms
    # folded in (each node gets the mean over its neighbour's source)
    cost = {1: partner_saliency.clone(), 0: own_saliency.clone()}  # source -> cost
    for source in (0, 1):
        cost[source][:, :-1, :] += (vertical[source][0] + vertical[source][1]) / 2
        cost[source][:, 1:, :] += (vertical[0][source] + vertical[1][source]) / 2
        cost[source][:, :, :-1] += (horizontal[source][0] + horizontal[source][1]) / 2
        cost[source][:, :, 1:] += (horizontal[0][source] + horizontal[1][source]) / 2
    # the rest of each edge's data term: its weight when the two sources differ, kept >= 0 so
    # that the swap's smoothness stays a semi-metric (the paper's code does not clamp)
    edge_v = ((vertical[1][0] + vertical[0][1] - vertical[1][1] - vertical[0][0]) / 2
              ).clamp_min(0) + smooth
    edge_h = ((horizontal[1][0] + horizontal[0][1] - horizontal[1][1] - horizontal[0][0]) / 2
              ).clamp_min(0) + smooth
    share = torch.linspace(0, 1, n_labels, device=pixels.device)  # own share of label j
    unary = (share * cost[1].unsqueeze(-1) + (1 - share) * cost[0].unsqueeze(-1)).double()
    prior = eta / blocks**2 * label_prior(lam.to(pixels.device), n_labels)
    unary = unary + prior.view(-1, 1, 1, n_labels)
    scale = 1.0 / (n_labels - 1) ** 2  # (j - j')^2 / (n - 1)^2 with integer (j - j')^2
    return LabellingCosts(unary, edge_v.double() * scale, edge_h.double() * scale)


def integer_costs(costs: LabellingCosts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int32 copies on the CPU, each row scaled so its largest term is INTEGER_SCALE."""
    unary = costs.unary - costs.unary.amin(dim=-1, keepdim=True)  # a constant per block
    largest = torch.stack([unary.flatten(1).amax(1), costs.vertical.flatten(1).amax(1),
                           costs.horizontal.flatten(1).amax(1)]).amax(0)
    factor = INTEGER_SCALE / largest.clamp_min(1e-30)

    def scaled(term: torch.Tensor) -> np.ndarray:
        view = factor.view(-1, *([1] * (term.dim() - 1)))
        return (term * view).round().to(torch.int32).cpu().numpy()

    return scaled(unary), scaled(costs.vertical), scaled(costs.horizontal)


def smoothness(n_labels: int) -> np.ndarray:
    """(n, n) int32 (j - j')^2: the label distance the edge weights multiply."""
    labels = np.arange(n_labels)
    return np.subtract.outer(labels, labels).astype(np.int32) ** 2


def labelling_energy(unary: np.ndarray, vertical: np.ndarray, horizontal: np.ndarray,
                     labels: np.ndarray) -> int:
    """The energy GCO minimises, of one row's (b, b) labelling, in the integer units."""
    labels = labels.astype(np.int64)
    data = np.take_along_axis(unary.astype(np.int64), labels[..., None], axis=-1).sum()
    distance = smoothness(unary.shape[-1]).astype(np.int64)
    edges = (vertical.astype(np.int64) * distance[labels[:-1, :], labels[1:, :]]).sum()
    edges += (horizontal.astype(np.int64) * distance[labels[:, :-1], labels[:, 1:]]).sum()
    return int(data + edges)


def solve_labelling(unary: np.ndarray, vertical: np.ndarray, horizontal: np.ndarray) -> np.ndarray:
    """(b, b) labels minimising one row's integer energy with GCO's alpha-beta swap."""
    import gco  # the optional extra mixup-bench[puzzlemix]; checked when the mixer is built

    blocks, n_labels = unary.shape[0], unary.shape[-1]
    labels = gco.cut_grid_graph(np.ascontiguousarray(unary), smoothness(n_labels),
                                np.ascontiguousarray(vertical), np.ascontiguousarray(horizontal),
                                algorithm="swap")
    return np.asarray(labels).reshape(blocks, blocks)


def own_share_masks(costs: LabellingCosts) -> torch.Tensor:
    """(N, b, b) float: each block's own-image share, j / (n - 1), from the per-row graph cuts.

    One copy of the costs to the host and one of the labels back: the cut runs on the CPU.
    """
    unary, vertical, horizontal = integer_costs(costs)
    labels = np.stack([solve_labelling(unary[row], vertical[row], horizontal[row])
                       for row in range(unary.shape[0])])
    n_labels = unary.shape[-1]
    return torch.from_numpy(labels).to(costs.unary.device, torch.float32) / (n_labels - 1)
