"""Loihi 2's fixed-point limits agree with the widths Lava itself declares, and every user reads them."""

from __future__ import annotations

import inspect

import pytest

from scadeploy.targets import lava_limits as limits
from scadeploy.targets.backend_options import LavaOptions


@pytest.fixture(scope="module")
def lava():
    from scadeploy.backends.lava.compat import import_lava

    return import_lava


def test_the_widths_are_the_precisions_of_lavas_fixed_point_processes(lava) -> None:
    lif = lava("lava.proc.lif.models")
    assert lif.PyLifModelBitAcc.vth.precision == limits.VTH_BITS == 17
    assert lif.AbstractPyLifModelFixed.bias_mant.precision == limits.BIAS_BITS
    assert lif.AbstractPyLifModelFixed.u.precision == lif.AbstractPyLifModelFixed.v.precision == limits.STATE_BITS
    assert lif.PyLifModelBitAcc.s_out.precision == limits.INPUT_BITS + 1  # a graded payload: value and sign
    assert lava("lava.proc.dense.models").PyDenseModelBitAcc.weights.precision == limits.WEIGHT_BITS
    clip = inspect.getsource(lava("lava.lib.dl.netx.utils").optimize_weight_bits)
    assert f"np.clip(weight, -256, {limits.WEIGHT_MAX})" in clip


def test_the_largest_values_are_one_below_the_register_edge() -> None:
    assert (limits.VTH_MAX, limits.BIAS_MAX, limits.WEIGHT_MAX, limits.INPUT_MAX) == (2**17 - 1, 4095, 254, 2**23 - 1)
    assert limits.activation_max(limits.STATE_BITS) == limits.VTH_MAX  # a full readout current is vth << 6


def test_the_default_lava_options_are_the_full_widths() -> None:
    options = LavaOptions()
    assert (options.weight_max, options.bias_max, options.vth_max) == (limits.WEIGHT_MAX, limits.BIAS_MAX,
                                                                       limits.VTH_MAX)
    assert options.activation_max == limits.activation_max(limits.STATE_BITS)
