"""The shared Lava test networks lower to the structures the other tests rely on."""

from __future__ import annotations

from lava_support import lowered


def test_cases_lower_to_the_expected_structures():
    digits, _, _ = lowered("digits")
    resnet, _, _ = lowered("resnet")
    assert digits.is_chain and not resnet.is_chain
    assert digits.has_readout and digits.output == "head"
    assert any(e.delay == 1 for layer in resnet.layers for e in layer.edges)
