"""The OR layer equals max pooling on spikes, grouped or not, with padding and overlapping windows."""

from __future__ import annotations

import pytest
import torch

from scadeploy.ir.graph import NeuronAttrs, Node, Op, PoolAttrs
from scadeploy.ir.neuron import run_neuron
from scadeploy.ir.passes.maxpool_as_or import or_layer


@pytest.mark.parametrize("grouped", [True, False])
@pytest.mark.parametrize("kernel, stride, padding", [((2, 2), (2, 2), (0, 0)), ((3, 3), (2, 2), (1, 1))])
def test_or_layer_is_max_pooling_of_spikes(grouped: bool, kernel, stride, padding) -> None:
    spikes = (torch.rand(5, 3, 4, 9, 9, generator=torch.Generator().manual_seed(0)) < 0.15).float()  # [T, N, C, H, W]
    pool = Node("pool", Op.MAXPOOL, ("sn",), PoolAttrs(kernel, stride, padding), (4, 0, 0))
    conv, neuron = or_layer(pool, (4, 9, 9), grouped)
    a = conv.attrs
    current = torch.nn.functional.conv2d(spikes.flatten(0, 1), conv.params["weight"], None, a.stride, a.padding,
                                         a.dilation, a.groups).unflatten(0, (5, 3))
    assert isinstance(neuron.attrs, NeuronAttrs) and neuron.name == "pool" and conv.name == "pool.or"
    expected = torch.nn.functional.max_pool2d(spikes.flatten(0, 1), kernel, stride, padding).unflatten(0, (5, 3))
    assert torch.equal(run_neuron(neuron.attrs, current), expected)
    assert (a.groups == 4) is grouped
