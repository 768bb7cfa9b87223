"""`model.net`: one HDF5 file, written with h5py alone, holding the fixed-point network twice over.

- `/scadeploy/...`: the complete `FixedNet` (every layer, every edge with its source and delay,
  input scale, readout decoding): the source of truth for the emulator and the process-graph builder.
- `/layer/0..n-1`: the same network in lava-dl netx's format, written when the network is a chain,
  so that an unmodified `lava.lib.dl.netx.hdf5.Network` loads it. Weights that are identical are
  HDF5 soft links into `/scadeploy`, so nothing is stored twice.

netx traps handled here (see the netx notes): `type` is a bytes string; `shape` is (C, H, W) and
netx reverses it to Lava's (W, H, C); conv weights stay in PyTorch layout (netx flips and transposes
them, and Lava's true convolution then equals PyTorch's cross-correlation); stride/padding/dilation
are (H, W) pairs; iDecay/vDecay are signed (netx computes iDecay - 1); the input layer has no
neuron group (an input neuron would never receive the graded input); a readout dense layer has no
neuron group (netx then builds a non-spiking integrator); groups above 127 overflow Lava's int8
conv parameters, so such convs are written ungrouped (block-diagonal weights); an all-zero dense
weight cannot be loaded, so it is written as one weight of 1 under an unreachable threshold.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from scadeploy.backends.lava.net import Edge, FixedNet, Layer
from scadeploy.errors import DataError, UnsupportedError

FORMAT = "scadeploy.lava"
VERSION = 1
MAX_LAVA_GROUPS = 127
VTH_MAX = 2**17 - 1  # vThMant is 17 bits


def write_net(net: FixedNet, path: str | os.PathLike) -> Path:
    """Write `net` to `path` (via a temporary file, so a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    with h5py.File(tmp, "w") as f:
        _write_fixed(f.create_group("scadeploy"), net)
        if net.is_chain:
            _write_netx(f.create_group("layer"), net)
    os.replace(tmp, path)
    return path


def _write_fixed(root: h5py.Group, net: FixedNet) -> None:
    root.attrs.update({"format": FORMAT, "version": VERSION, "timesteps": net.timesteps,
                       "input_shape": np.array(net.input_shape), "input_scale": net.input_scale,
                       "input_max": net.input_max, "output": net.output, "readout_scale": net.readout_scale,
                       "netx": net.is_chain, "sequence_input": net.sequence_input})
    root.create_dataset("readout_bias", data=np.asarray(net.readout_bias, dtype=np.float64))
    layers = root.create_group("layers")
    for i, layer in enumerate(net.layers):
        g = layers.create_group(str(i))
        g.attrs.update({"name": layer.name, "shape": np.array(layer.shape), "vth": layer.vth,
                        "i_decay": layer.i_decay, "v_decay": layer.v_decay, "spiking": layer.spiking,
                        "depth": layer.depth})
        g.create_dataset("bias", data=layer.bias.astype(np.int32))
        for j, edge in enumerate(layer.edges):
            e = g.create_group(f"edges/{j}")
            e.attrs.update({"source": edge.source, "groups": edge.groups, "flatten": edge.flatten,
                            "delay": edge.delay, "conv": edge.is_conv})
            if edge.is_conv:
                e.attrs.update({"stride": edge.stride, "padding": edge.padding, "dilation": edge.dilation})
            e.create_dataset("weight", data=edge.weight.astype(np.int16))


def _bytes(group: h5py.Group, key: str, value: str) -> None:
    group.create_dataset(key, (1,), "S10", [value.encode("ascii")])


def _write_netx(root: h5py.Group, net: FixedNet) -> None:
    _bytes(root.create_group("0"), "type", "input")
    root["0"].create_dataset("shape", data=np.array(net.input_shape))
    index = 1
    for i, layer in enumerate(net.layers):
        edge = layer.edges[0]
        if edge.flatten:
            _bytes(root.create_group(str(index)), "type", "flatten")
            index += 1
        g = root.create_group(str(index))
        index += 1
        g.create_dataset("shape", data=np.array(layer.shape))
        weight_path = f"/scadeploy/layers/{i}/edges/0/weight"
        if edge.is_conv:
            _bytes(g, "type", "conv")
            for key in ("stride", "padding", "dilation"):
                g.create_dataset(key, data=np.array(getattr(edge, key)))
            if edge.groups > MAX_LAVA_GROUPS:
                g.create_dataset("groups", data=1)
                g.create_dataset("weight", data=ungrouped(edge.weight, edge.groups).astype(np.int16))
            else:
                g.create_dataset("groups", data=edge.groups)
                g["weight"] = h5py.SoftLink(weight_path)
        vth = layer.vth
        if not edge.is_conv and not edge.weight.any():
            weight, vth = silent_dense(layer, net)
            _bytes(g, "type", "dense")
            g.create_dataset("weight", data=weight)
        elif not edge.is_conv:
            _bytes(g, "type", "dense")
            g["weight"] = h5py.SoftLink(weight_path)
        if layer.spiking:
            g["bias"] = h5py.SoftLink(f"/scadeploy/layers/{i}/bias")
            n = g.create_group("neuron")
            _bytes(n, "type", "CUBA")
            for key, value in (("vThMant", vth), ("iDecay", layer.i_decay), ("vDecay", layer.v_decay),
                               ("refDelay", 1)):
                n.create_dataset(key, data=np.int32(value))
            n.create_dataset("gradedSpike", data=False)


def silent_dense(layer: Layer, net: FixedNet) -> tuple[np.ndarray, int]:
    """(weight, vThMant) that netx can load for a dense layer whose weights are all zero.

    NOTE: netx's `optimize_weight_bits` divides by the largest weight, so an all-zero matrix (a linear
    layer whose every channel was masked keeps one zero channel) raises OverflowError. One weight of 1
    with the largest threshold loads and still never fires: v <= T * input_max < vThMant << 6 within a
    sample (the runner resets between samples), provided the bias cannot charge v (bias <= 0).
    """
    edge = layer.edges[0]
    most = net.input_max if edge.source == "input" else 1
    if not layer.spiking or (layer.bias > 0).any() or net.timesteps * most >= VTH_MAX:
        raise UnsupportedError(f"layer '{layer.name}' has only zero weights, which lava-dl netx cannot load "
                               "(its weight scale divides by the largest weight)",
                               "unmask at least one input of that layer, or remove the layer from the model")
    weight = np.zeros(edge.weight.shape, dtype=np.int16)
    weight[0, 0] = 1
    return weight, VTH_MAX


def ungrouped(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv weight (C_out, C_in/g, kH, kW) as the equivalent block-diagonal (C_out, C_in, kH, kW)."""
    c_out, c_in_group = weight.shape[:2]
    full = np.zeros((c_out, c_in_group * groups, *weight.shape[2:]), dtype=weight.dtype)
    per_group = c_out // groups
    for g in range(groups):
        rows = slice(g * per_group, (g + 1) * per_group)
        full[rows, g * c_in_group:(g + 1) * c_in_group] = weight[rows]
    return full


def read_net(path: str | os.PathLike) -> FixedNet:
    """Read the `/scadeploy` part of a model.net back into a FixedNet."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"'{path}' does not exist", "compile with --target loihi2-sim first")
    try:
        with h5py.File(path, "r") as f:
            root = f["scadeploy"]
            if root.attrs.get("format") != FORMAT or int(root.attrs.get("version", 0)) != VERSION:
                raise DataError(f"'{path}' is not a scadeploy Lava network (format {FORMAT} v{VERSION})")
            layers = tuple(_read_layer(root["layers"][str(i)]) for i in range(len(root["layers"])))
            a = root.attrs
            return FixedNet(tuple(int(d) for d in a["input_shape"]), int(a["timesteps"]), float(a["input_scale"]),
                            int(a["input_max"]), layers, str(a["output"]), float(a["readout_scale"]),
                            root["readout_bias"][()], bool(a.get("sequence_input", False)))
    except (OSError, KeyError) as exc:
        raise DataError(f"'{path}' is not a readable scadeploy Lava network: {exc}",
                        "re-run scadeploy compile with --target loihi2-sim") from exc


def _read_layer(g: h5py.Group) -> Layer:
    edges = []
    for j in range(len(g["edges"])):
        e = g["edges"][str(j)]
        a = e.attrs
        conv = bool(a["conv"])
        edges.append(Edge(str(a["source"]), e["weight"][()].astype(np.int64),
                          _pair(a, "stride", conv), _pair(a, "padding", conv), _pair(a, "dilation", conv),
                          int(a["groups"]), bool(a["flatten"]), int(a["delay"])))
    a = g.attrs
    return Layer(str(a["name"]), tuple(int(d) for d in a["shape"]), tuple(edges), g["bias"][()].astype(np.int64),
                 int(a["vth"]), int(a["i_decay"]), int(a["v_decay"]), bool(a["spiking"]), int(a["depth"]))


def _pair(attrs, key: str, conv: bool) -> tuple[int, int] | None:
    return tuple(int(v) for v in attrs[key]) if conv else None
