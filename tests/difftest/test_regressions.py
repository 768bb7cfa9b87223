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


def test_seed_97_grouped_conv_goes_to_nir_dense():
    # NIR's type inference read a grouped conv's input channels from its per-group weight and raised
    # "type mismatch: layers_1.output: [[2 4 4]] -> layers_2_short_0.input: [[1 4 4]]".
    verdict = judge(random_case(97))
    assert verdict.outcomes["nir"] == "agree", verdict.details.get("nir")


def test_seed_18_a_firing_channel_annihilated_by_a_product_is_kept():
    # SEW IAND x * (1 - y): a masked channel of y whose BN shift is above the threshold fires at every
    # step, but x is zero there, so the product reads zero. Stripping removed the firing channel (exact
    # for the outputs, but a removed channel must be a silent one); it is now kept, with the reason.
    case = random_case(18)
    verdict = judge(case)
    assert not verdict.failed, verdict.failures()


def test_seed_56_a_fully_masked_layer_compiles_with_one_silent_channel_kept():
    from difftest.generator import build

    from scadeploy.compiler import compile_model
    from scadeploy.ir.graph import Encoding

    case = random_case(56)
    model, masks, x = build(case)
    assert masks is None and any("fully masked" in t for t in case.traps)
    result = compile_model(model, masks, x, case.timesteps, Encoding(case.encoding))
    assert result.parity.exact
    assert any("every channel is masked" in k.reason for k in result.report.kept)
    assert not judge(case).failed
