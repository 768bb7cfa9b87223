"""The structure update: global ranking, regrowth, floor, prune-only, and the default (alpha, beta) split."""

from __future__ import annotations

import math

import pytest
import torch

from scadeploy.sca.structure import Budget, default_budget, mask_changes, ramped_budget, select_masks


def _same(x: dict, y: dict) -> bool:
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _t(*values):
    return torch.tensor(values, dtype=torch.float64)


ACTIVITY = {"a": _t(0.9, 0.1, 0.5, 0.2), "b": _t(0.8, 0.7, 0.05, 0.3, 0.6, 0.4)}
GRAD = {"a": _t(0.0, 5.0, 0.0, 1.0), "b": _t(0.0, 0.0, 3.0, 0.0, 0.0, 2.0)}


def test_global_ranking_then_regrowth_by_gradient():
    # N = 10: alpha 0.3 keeps the 3 most active anywhere (a0, b0, b1); beta 0.2 regrows a1 and b2 by |grad|
    masks = select_masks(ACTIVITY, GRAD, Budget(0.3, 0.2))
    assert masks["a"].tolist() == [True, True, False, False]
    assert masks["b"].tolist() == [True, True, True, False, False, False]
    assert sum(int(m.sum()) for m in masks.values()) == 5


def test_masks_recomputed_from_scratch():
    previous = {"a": torch.tensor([False, True, True, True]), "b": torch.ones(6, dtype=torch.bool)}
    masks = select_masks(ACTIVITY, GRAD, Budget(0.3, 0.2), previous=previous)
    assert bool(masks["a"][0])  # pruned before, most active now: it comes back
    assert _same(masks, select_masks(ACTIVITY, GRAD, Budget(0.3, 0.2)))


def test_floor_keeps_every_layer_alive():
    quiet = {"a": _t(0.9, 0.8, 0.7, 0.6), "b": _t(0.01, 0.03, 0.02, 0.0, 0.0, 0.0)}
    no_grad = {k: torch.zeros_like(v) for k, v in quiet.items()}
    masks = select_masks(quiet, no_grad, Budget(0.2, 0.0), floor=1)
    assert masks["b"].tolist() == [False, True, False, False, False, False]  # its most active channel
    assert int(masks["a"].sum()) == 2
    masks = select_masks(quiet, no_grad, Budget(0.2, 0.0), floor=3)
    assert int(masks["b"].sum()) == 3 and int(masks["a"].sum()) == 3


def test_prune_only_never_regrows():
    previous = {"a": torch.tensor([False, True, True, True]), "b": torch.tensor([True, False, True, True, True, True])}
    masks = select_masks(ACTIVITY, GRAD, Budget(0.3, 0.2), previous=previous, prune_only=True)
    for name in masks:
        assert not bool((masks[name] & ~previous[name]).any())
    assert sum(int(m.sum()) for m in masks.values()) == 5  # floor(0.5 * 10) among the channels still alive
    assert masks["b"].tolist() == [True, False, False, True, True, True]


def test_prune_only_floor_uses_surviving_channels():
    previous = {"a": torch.tensor([False, True, False, False]), "b": torch.ones(6, dtype=torch.bool)}
    masks = select_masks(ACTIVITY, GRAD, Budget(0.1, 0.0), previous=previous, prune_only=True)
    assert masks["a"].tolist() == [False, True, False, False]  # a0 is more active but was pruned before


def test_ties_broken_by_position():
    flat = {"a": torch.zeros(4, dtype=torch.float64), "b": torch.zeros(6, dtype=torch.float64)}
    masks = select_masks(flat, flat, Budget(0.3, 0.0))
    assert masks["a"].tolist() == [True, True, True, False]
    assert _same(masks, select_masks(flat, flat, Budget(0.3, 0.0)))


@pytest.mark.parametrize("keep, alpha, beta", [(0.3, 0.1, 0.2), (0.9, 0.8, 0.1)])
def test_default_budget_matches_paper(keep, alpha, beta):
    budget = default_budget(keep)
    assert (budget.alpha, budget.beta) == (alpha, beta)


@pytest.mark.parametrize("keep", [0.05, 0.2, 0.5, 0.75, 0.99])
def test_default_budget_splits_keep_ratio(keep):
    budget = default_budget(keep)
    assert math.isclose(budget.keep_ratio, keep)
    assert 0 <= budget.beta <= keep * 2 / 3 + 1e-12 and budget.alpha >= keep / 3 - 1e-12


def test_mask_changes_counts_both_ways():
    old = {"a": torch.tensor([True, True, False, False])}
    new = {"a": torch.tensor([True, False, True, True])}
    assert mask_changes(old, new) == {"pruned": 1, "regrown": 2}


def test_layer_mean_ranking_gives_a_starved_layer_its_best_channels():
    # layer "b" fires ten times less than "a" everywhere: the raw ranking keeps only a's channels,
    # dividing by each layer's mean compares channels within their layer (b0 stands out there)
    activity = {"a": _t(1.0, 0.9, 0.8, 0.7), "b": _t(0.3, 0.01, 0.01, 0.01)}
    raw = select_masks(activity, None, Budget(0.3, 0.0), ranking="paper", floor=0)
    fair = select_masks(activity, None, Budget(0.3, 0.0), ranking="layer_mean", floor=0)
    assert raw["b"].tolist() == [False] * 4 and int(raw["a"].sum()) == 2
    assert fair["b"].tolist() == [True, False, False, False]
    assert sum(int(m.sum()) for m in fair.values()) == 2  # the same budget, spent differently


def test_layer_mean_of_a_silent_layer_is_left_raw():
    activity = {"a": _t(0.0, 0.0), "b": _t(1.0, 2.0)}
    masks = select_masks(activity, None, Budget(0.5, 0.0), ranking="layer_mean")
    assert masks["b"].tolist() == [True, True]  # (2/3, 4/3) beat a's zeros, which stay zeros (no NaN)
    assert masks["a"].tolist() == [True, False]  # then the floor


def test_min_keep_fraction_per_layer():
    masks = select_masks(ACTIVITY, GRAD, Budget(0.2, 0.0), ranking="paper", min_keep=0.5)
    assert int(masks["a"].sum()) == 2 and int(masks["b"].sum()) == 3  # ceil(0.5 * 4), ceil(0.5 * 6)
    assert masks["b"].tolist() == [True, True, False, False, True, False]  # the most active of b


def test_unknown_ranking_is_refused():
    with pytest.raises(ValueError, match="layer_mean, paper"):
        select_masks(ACTIVITY, GRAD, Budget(0.2, 0.1), ranking="nope")


def test_ramp_falls_cubically_to_the_target():
    target = Budget(0.1, 0.2)
    keeps = [ramped_budget(target, u, 4).keep_ratio for u in range(1, 6)]
    assert keeps[0] == pytest.approx(0.3 + 0.7 * 0.75 ** 3) and keeps[3:] == [pytest.approx(0.3)] * 2
    assert keeps == sorted(keeps, reverse=True)  # never grows back
    first = ramped_budget(target, 1, 4)
    assert first.beta / first.alpha == pytest.approx(2.0)  # the split is kept
    assert ramped_budget(target, 1, 0) == target  # no ramp: the paper's fixed target
