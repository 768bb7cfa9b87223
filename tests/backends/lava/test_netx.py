"""model.net: round trip of the fixed-point network, netx layout, and loading by unmodified lava-dl netx."""

from __future__ import annotations

import dataclasses

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lava_support import lowered

from scadeploy.backends.lava.emulator import emulate
from scadeploy.backends.lava.export import lower_graph
from scadeploy.backends.lava.net import READOUT_VTH
from scadeploy.backends.lava.netx import read_net, ungrouped, write_net
from scadeploy.backends.lava.runner import run_lava
from scadeploy.errors import DataError, GraphError, UnsupportedError
from scadeploy.ir.graph import (
    Conv2dAttrs,
    FlattenAttrs,
    Graph,
    InputAttrs,
    LinearAttrs,
    MeanOverTimeAttrs,
    NeuronAttrs,
    NeuronKind,
    Node,
    Op,
    OutputAttrs,
)
from scadeploy.ir.passes.strip_channels import strip_channels
from scadeploy.ir.verify import verify
from scadeploy.targets.backend_options import LavaOptions
from scadeploy.targets.lava_limits import VTH_MAX


def _same(a, b) -> bool:
    return all(
        la.name == lb.name and la.shape == lb.shape and np.array_equal(la.bias, lb.bias)
        and (la.vth, la.i_decay, la.v_decay, la.spiking, la.depth) == (lb.vth, lb.i_decay, lb.v_decay, lb.spiking,
                                                                       lb.depth)
        and all(np.array_equal(ea.weight, eb.weight) and ea.source == eb.source and ea.delay == eb.delay
                and (ea.stride, ea.padding, ea.groups, ea.flatten) == (eb.stride, eb.padding, eb.groups, eb.flatten)
                for ea, eb in zip(la.edges, lb.edges, strict=True))
        for la, lb in zip(a.layers, b.layers, strict=True))


@pytest.mark.parametrize("case", ["digits", "resnet"])
def test_round_trip(tmp_path, case):
    net, _, _ = lowered(case)
    back = read_net(write_net(net, tmp_path / "model.net"))
    assert _same(net, back)
    assert (back.timesteps, back.input_scale, back.output, back.readout_scale) == \
        (net.timesteps, net.input_scale, net.output, net.readout_scale)
    assert np.allclose(back.readout_bias, net.readout_bias)


def test_netx_layout(tmp_path):
    net, _, _ = lowered("digits")
    path = write_net(net, tmp_path / "model.net")
    with h5py.File(path) as f:
        layers = f["layer"]
        types = [layers[str(i)]["type"][0].decode() for i in range(len(layers))]
        assert types == ["input", "conv", "conv", "conv", "conv", "conv", "flatten", "dense"]
        assert "neuron" not in layers["0"] and "neuron" not in layers["7"]  # graded input; readout integrator
        assert list(layers["0"]["shape"][()]) == [1, 8, 8]
        assert isinstance(layers.get("1/weight", getlink=True), h5py.SoftLink)  # stored once, in /scadeploy
        neuron = layers["1"]["neuron"]
        assert neuron["vThMant"][()] == net.layers[0].vth and neuron["iDecay"].dtype.kind == "i"


def test_residual_networks_have_no_netx_part(tmp_path):
    net, _, _ = lowered("resnet")
    with h5py.File(write_net(net, tmp_path / "model.net")) as f:
        assert "layer" not in f and not f["scadeploy"].attrs["netx"]


def test_ungrouped_weights_compute_the_same_conv():
    w = torch.randint(-5, 6, (6, 1, 2, 2))
    x = torch.rand(1, 6, 4, 4, dtype=torch.float64)
    full = torch.from_numpy(ungrouped(w.numpy(), 6)).double()
    assert torch.allclose(F.conv2d(x, w.double(), groups=6), F.conv2d(x, full))


def test_missing_or_foreign_files_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_net(tmp_path / "none.net")
    with h5py.File(tmp_path / "other.net", "w") as f:
        f.create_group("layer")
    with pytest.raises(DataError, match="not a readable scadeploy Lava network"):
        read_net(tmp_path / "other.net")


def test_unmodified_netx_loads_the_file(tmp_path):
    from scadeploy.backends.lava.compat import import_lava

    net, _, _ = lowered("vgg")
    path = write_net(net, tmp_path / "model.net")
    network = import_lava("lava.lib.dl.netx").hdf5.Network(net_config=str(path), input_message_bits=9)
    assert len(network) == len(net.layers)
    for layer, block in zip(net.layers, network.layers, strict=True):
        shape = layer.shape[::-1] if len(layer.shape) == 3 else layer.shape  # Lava's WHC order
        assert tuple(block.out.shape) == tuple(shape)
    assert tuple(network.inp.shape) == net.input_shape[::-1]


def test_the_readout_threshold_is_inside_the_readers_limit_and_one_past_is_refused(tmp_path):
    """Writer, reader and readout share `lava_limits.VTH_MAX` (vThMant is 17 bits unsigned)."""
    net, _, _ = lowered("digits")
    readout = net[net.output]
    assert not readout.spiking and readout.vth == READOUT_VTH == VTH_MAX == 2**17 - 1
    assert read_net(write_net(net, tmp_path / "model.net"))[net.output].vth == VTH_MAX
    past = dataclasses.replace(net, layers=(*net.layers[:-1], dataclasses.replace(readout, vth=VTH_MAX + 1)))
    with pytest.raises(GraphError, match=f"vth is {VTH_MAX + 1}, outside 0..{VTH_MAX}"):
        write_net(past, tmp_path / "past.net")
    assert not (tmp_path / "past.net").exists()
    with h5py.File(tmp_path / "model.net", "r+") as f:
        f[f"scadeploy/layers/{len(net.layers) - 1}"].attrs["vth"] = VTH_MAX + 1
    with pytest.raises(DataError, match=f"inconsistent Lava network: .*vth is {VTH_MAX + 1}, outside 0..{VTH_MAX}"):
        read_net(tmp_path / "model.net")


def _fully_masked_hidden_layer(bias: float) -> tuple[Graph, dict[str, torch.Tensor]]:
    """input -> conv -> IF -> flatten -> linear(32 -> 3, every channel masked: zero weights) -> IF -> mean -> head."""
    g = torch.Generator().manual_seed(0)
    nodes = [
        Node("input", Op.INPUT, (), InputAttrs(), (1, 4, 4)),
        Node("conv", Op.CONV2D, ("input",), Conv2dAttrs(1, 2, (3, 3), padding=(1, 1)), (2, 4, 4),
             {"weight": torch.rand(2, 1, 3, 3, generator=g)}),
        Node("sn0", Op.NEURON, ("conv",), NeuronAttrs(NeuronKind.IF, 1.0, 0.0), (2, 4, 4)),
        Node("flat", Op.FLATTEN, ("sn0",), FlattenAttrs(), (32,)),
        Node("fc", Op.LINEAR, ("flat",), LinearAttrs(32, 3, bias=True), (3,),
             {"weight": torch.zeros(3, 32), "bias": torch.full((3,), bias)}),
        Node("sn1", Op.NEURON, ("fc",), NeuronAttrs(NeuronKind.IF, 1.0, 0.0), (3,)),
        Node("mean", Op.MEAN_OVER_TIME, ("sn1",), MeanOverTimeAttrs(), (3,)),
        Node("head", Op.LINEAR, ("mean",), LinearAttrs(3, 2), (2,), {"weight": torch.rand(2, 3, generator=g)}),
        Node("output", Op.OUTPUT, ("head",), OutputAttrs(), (2,)),
    ]
    return verify(Graph(tuple(nodes), 4)), {"fc": torch.zeros(3, dtype=torch.bool)}


@pytest.mark.lava
@pytest.mark.slow
def test_a_linear_layer_with_every_channel_masked_loads_and_runs_on_netx(tmp_path):
    """The one zero channel kept for a fully masked linear would make netx divide by a zero weight."""
    graph, masks = _fully_masked_hidden_layer(bias=0.0)
    stripped, report = strip_channels(graph, masks)
    assert stripped["fc"].shape == (1,) and not stripped["fc"].params["weight"].any()
    net, _, _ = lower_graph(stripped, LavaOptions())
    path = write_net(net, tmp_path / "model.net")
    assert read_net(path)["sn1"].edges[0].weight.shape == (1, 32)  # the network itself keeps its zeros
    x = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    result = run_lava(net, x, net_path=path, builder="netx", chunk_samples=3)
    emu = emulate(net, x)
    assert torch.equal(result.spikes["sn1"], emu.spikes["sn1"]) and not result.spikes["sn1"].any()
    assert torch.equal(result.spikes["sn0"], emu.spikes["sn0"]) and result.spikes["sn0"].any()
    assert torch.equal(result.logits, emu.logits)


def test_a_zero_dense_layer_that_its_bias_drives_is_refused_in_one_line(tmp_path):
    graph, _ = _fully_masked_hidden_layer(bias=0.3)  # fires on its bias alone: no threshold can stand in
    net, _, _ = lower_graph(graph, LavaOptions())
    with pytest.raises(UnsupportedError, match="layer 'sn1' has only zero weights, which lava-dl netx cannot load"):
        write_net(net, tmp_path / "model.net")
