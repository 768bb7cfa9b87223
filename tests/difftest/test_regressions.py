"""Bugs the random networks found, each pinned by the seed that found it."""

from __future__ import annotations

from difftest.generator import random_case
from difftest.oracle import judge


def test_seed_21_grouped_conv_keeps_its_input_channels_when_stripping():
    # A grouped conv (groups=3) in a residual body: stripping set in_channels to weight.shape[1]
    # (inputs per group), and the next shape check failed with "conv2d expects 1 input channels, got 3".
    case = random_case(21)
    assert any(s.get("groups", 1) > 1 for block in case.spec for s in block.get("body", [block]))
    verdict = judge(case)
    assert not verdict.failed, verdict.failures()
    assert verdict.outcomes["strip"] == "agree"
