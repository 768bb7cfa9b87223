"""The SCA structure update: global ranking by activity, regrowth by |dL/d gamma|, a per-layer floor.

With N prunable channels in all and keep ratio k = alpha + beta:
1. rank every channel of every prunable layer together by activity; keep the top floor(alpha * N);
2. among the rest, regrow the top floor(beta * N) by |dL/d gamma|;
3. give every layer with fewer than max(`floor`, ceil(`min_keep` * width)) kept channels its most
   active ones (so no layer empties; the total may then exceed the target by those few channels).

The ranking (`RANKINGS`) is either the paper's ("paper": raw scores compared across layers) or
"layer_mean" (default): before the global ranking, each layer's activity and |dL/d gamma| are divided
by that layer's mean. Raw activity falls in layers whose inputs were pruned, so the paper's rule
starves them further; dividing by the layer mean compares channels by how they stand within their
own layer, while the global ranking still decides how many each layer keeps. This is the
layer-wise normalisation of pruning scores used by Molchanov et al. (ICLR 2017, "Pruning
convolutional neural networks for resource efficient inference", per-layer L2 normalisation of the
Taylor criterion) for the same reason; measured gains are in the README's SCA study.
Masks are recomputed from scratch at each update. Prune-only (the ablation) has no regrowth and
never brings a channel back: it keeps the top floor(k * N) by activity among the channels still kept.
Ties are broken by position (stable sort), so equal inputs give equal masks on every rank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

RANKINGS = ("layer_mean", "paper")

# The paper's two published (alpha, beta) settings, by keep ratio; other ratios interpolate beta.
PAPER_SPLITS = {0.3: (0.1, 0.2), 0.9: (0.8, 0.1)}


@dataclass(frozen=True)
class Budget:
    """Fractions of all prunable channels kept by activity (alpha) and regrown by gradient (beta)."""

    alpha: float
    beta: float

    @property
    def keep_ratio(self) -> float:
        return self.alpha + self.beta


def default_budget(keep_ratio: float) -> Budget:
    """The paper's split of a keep ratio into (alpha, beta).

    DECISION: beta follows the line through the published settings, (0.3 -> 0.2) and (0.9 -> 0.1),
    clamped to [0, 2/3 * k] so that activity always selects at least a third of the kept channels.
    """
    for known, (alpha, beta) in PAPER_SPLITS.items():
        if math.isclose(keep_ratio, known):
            return Budget(alpha, beta)
    beta = min(max(0.25 - keep_ratio / 6.0, 0.0), keep_ratio * 2.0 / 3.0)
    return Budget(keep_ratio - beta, beta)


def ramped_budget(budget: Budget, update: int, ramp: int) -> Budget:
    """The budget of the `update`-th structure update (1-based) when the target is reached over `ramp` updates.

    The kept fraction falls from 1 to the target along Zhu & Gupta's cubic schedule ("To prune, or
    not to prune", 2017): k_u = k + (1 - k) * (1 - u / ramp)^3, alpha and beta scaled alike, so the
    first updates remove few channels and the network can adapt. ramp 0 is the paper's fixed target
    from the first update, which on short schedules removes most channels at once.
    """
    if ramp <= 0 or update >= ramp:
        return budget
    keep = budget.keep_ratio + (1.0 - budget.keep_ratio) * (1.0 - update / ramp) ** 3
    scale = keep / budget.keep_ratio
    return Budget(budget.alpha * scale, budget.beta * scale)


def _flat(scores: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([s.double().flatten() for s in scores.values()])


def normalized(scores: dict[str, torch.Tensor], ranking: str) -> dict[str, torch.Tensor]:
    """Scores as the global ranking compares them: raw ("paper"), or divided by their layer's mean."""
    if ranking == "paper":
        return scores
    out = {}
    for name, values in scores.items():
        mean = values.double().mean()
        out[name] = values.double() / mean if mean > 0 else values.double()
    return out


def _top(values: torch.Tensor, candidates: torch.Tensor, count: int) -> torch.Tensor:
    """Bool mask of the `count` highest `values` among `candidates` (stable: earlier index wins ties)."""
    chosen = torch.zeros_like(candidates)
    if count <= 0:
        return chosen
    masked = torch.where(candidates, values, torch.full_like(values, -math.inf))
    order = torch.sort(masked, descending=True, stable=True).indices
    order = order[: min(count, int(candidates.sum()))]
    chosen[order] = True
    return chosen


def select_masks(activity: dict[str, torch.Tensor], gamma_grad: dict[str, torch.Tensor] | None, budget: Budget,
                 floor: int = 1, previous: dict[str, torch.Tensor] | None = None,
                 prune_only: bool = False, ranking: str = "paper", min_keep: float = 0.0) -> dict[str, torch.Tensor]:
    """New masks (conv name -> bool[C], True = kept) from one epoch's activity and gamma-gradient scores.

    `previous` (the masks in force) is only read by prune-only, which never re-admits a pruned channel.
    """
    if ranking not in RANKINGS:
        raise ValueError(f"unknown ranking '{ranking}', choose one of {', '.join(RANKINGS)}")
    names = list(activity)
    sizes = [activity[n].numel() for n in names]
    total = sum(sizes)
    act = _flat(normalized(activity, ranking))
    eligible = _flat(previous).bool() if prune_only and previous else torch.ones(total, dtype=torch.bool)
    if prune_only:
        keep = _top(act, eligible, math.floor(budget.keep_ratio * total + 1e-9))
    else:
        keep = _top(act, eligible, math.floor(budget.alpha * total + 1e-9))
        no_grad = torch.zeros(total, dtype=torch.float64)
        grad = _flat(normalized(gamma_grad, ranking)) if gamma_grad is not None else no_grad
        keep |= _top(grad, ~keep, math.floor(budget.beta * total + 1e-9))
    masks = {}
    for name, size, kept, allowed in zip(names, sizes, keep.split(sizes), eligible.split(sizes), strict=True):
        kept = kept.clone()
        least = max(floor, math.ceil(min_keep * size - 1e-9))
        missing = min(least, size) - int(kept.sum())
        if missing > 0:
            kept |= _top(activity[name].double().flatten(), allowed & ~kept, missing)
        masks[name] = kept
    return masks


def regrown_channels(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per layer, the channels pruned under `old` that `new` keeps."""
    return {k: ~old[k] & new[k] for k in new}


def mask_changes(old: dict[str, torch.Tensor], new: dict[str, torch.Tensor]) -> dict[str, int]:
    """Over all layers: how many kept channels were pruned, and how many pruned ones came back."""
    pruned = sum(int((old[k] & ~new[k]).sum()) for k in new)
    regrown = sum(int(rows.sum()) for rows in regrown_channels(old, new).values())
    return {"pruned": pruned, "regrown": regrown}
