"""Shrink a failing case to a minimal one: drop layers, blocks and time steps while it still fails."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import replace

from difftest.generator import Case, Spec


def _simpler_specs(spec: Spec) -> list[Spec]:
    """Every spec one step simpler: a layer or block removed, a block replaced by its body."""
    out = []
    for i, s in enumerate(spec[:-1]):  # the head stays
        out.append(spec[:i] + spec[i + 1:])
        if s["op"] in ("residual", "sew"):
            out.append(spec[:i] + copy.deepcopy(s["body"]) + spec[i + 1:])
    return out


def shrink(case: Case, fails: Callable[[Case], bool], budget: int = 40) -> Case:
    """Greedy: take the first simpler case that still fails, until none does or `budget` runs are spent.
    Invalid candidates (a layer whose input no longer fits) do not fail the same way and are skipped."""
    current = case
    while budget > 0:
        candidates = [replace(current, spec=s, traps=[]) for s in _simpler_specs(current.spec)]
        if current.timesteps > 1:
            candidates.append(replace(current, timesteps=1, traps=[]))
        if current.samples > 1:
            candidates.append(replace(current, samples=1, traps=[]))
        for candidate in candidates:
            budget -= 1
            if fails(candidate):
                current = candidate
                break
            if budget <= 0:
                break
        else:
            return current
    return current
