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

from scadeploy.backends.lava.net import INPUT, Edge, FixedNet, Layer
from scadeploy.errors import DataError, GraphError, UnsupportedError
from scadeploy.targets.lava_limits import BIAS_MAX, DECAY_ONE, INPUT_MAX, MAX_DELAY, MAX_GROUPS, VTH_MAX, WEIGHT_MAX

FORMAT = "scadeploy.lava"
VERSION = 1


def write_net(net: FixedNet, path: str | os.PathLike) -> Path:
    """Write `net` to `path` (via a temporary file, so a reader never sees half a file). The reader's
    checks run first: a network outside Lava's limits is a lowering bug and is never written."""
    try:
        check_net(net)
    except ValueError as exc:
        raise GraphError(f"the lowered Lava network breaks what model.net may hold: {exc}",
                         "report the model as a scadeploy bug") from exc
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
            if edge.groups > MAX_GROUPS:
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
    """Read the `/scadeploy` part of a model.net back into a FixedNet, checked field by field (`check_net`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"'{path}' does not exist", "compile with --target loihi2-sim first")
    try:
        with h5py.File(path, "r") as f:
            root = f["scadeploy"]
            if root.attrs.get("format") != FORMAT or _int(root.attrs.get("version", 0)) != VERSION:
                raise DataError(f"'{path}' is not a scadeploy Lava network (format {FORMAT} v{VERSION})")
            count = len(root["layers"])
            if not 1 <= count <= MAX_LAYERS:
                raise ValueError(f"{count} layers (1..{MAX_LAYERS} expected)")
            layers = tuple(_read_layer(root["layers"][str(i)]) for i in range(count))
            a = root.attrs
            net = FixedNet(_ints(a["input_shape"]), _int(a["timesteps"]), float(a["input_scale"]),
                           _int(a["input_max"]), layers, _str(a["output"]), float(a["readout_scale"]),
                           _array(root["readout_bias"], np.float64), bool(_int(a.get("sequence_input", 0))))
    except (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, AttributeError, OverflowError) as exc:
        reason = " ".join(str(exc).split())  # h5py and numpy messages may span lines
        raise DataError(f"'{path}' is not a readable scadeploy Lava network: {reason}",
                        "re-run scadeploy compile with --target loihi2-sim") from exc
    try:
        check_net(net)
    except ValueError as exc:
        raise DataError(f"'{path}' holds an inconsistent Lava network: {exc}",
                        "re-run scadeploy compile with --target loihi2-sim") from exc
    return net


# Bounds of what a model.net may hold: Lava's fixed point (`targets/lava_limits.py`, the same bounds
# the writer and the quantizer keep) and sizes an emulator run can hold.
MAX_LAYERS = 4096
MAX_NEURONS = 1 << 24
MAX_WEIGHTS = 1 << 28
MAX_TIMESTEPS = 1024


def _int(value: object) -> int:
    array = np.asarray(value)
    if array.shape not in ((), (1,)) or not np.issubdtype(array.dtype, np.integer) and array.dtype != np.bool_:
        raise ValueError(f"expected an integer, got {_brief(value)}")
    return int(array.reshape(()))


def _brief(value: object) -> str:
    """A value on one short line, for error messages."""
    return " ".join(repr(value).split())[:40]


def _ints(value: object) -> tuple[int, ...]:
    array = np.asarray(value)
    if array.ndim != 1 or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"expected a list of integers, got {_brief(value)}")
    return tuple(int(v) for v in array)


def _str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {_brief(value)}")
    return value


def _array(dataset: h5py.Dataset, dtype: type) -> np.ndarray:
    """A numeric dataset, size-checked before it is read."""
    if not isinstance(dataset, h5py.Dataset) or dataset.size > MAX_WEIGHTS:
        raise ValueError(f"'{getattr(dataset, 'name', dataset)}' is not a numeric dataset of at most {MAX_WEIGHTS}")
    data = np.asarray(dataset[()])
    if not (np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.floating)):
        raise ValueError(f"'{dataset.name}' holds {data.dtype}, expected numbers")
    if np.issubdtype(dtype, np.integer) and not np.issubdtype(data.dtype, np.integer):
        raise ValueError(f"'{dataset.name}' holds {data.dtype}, expected integers")
    return data.astype(dtype)


def _read_layer(g: h5py.Group) -> Layer:
    edges = []
    count = len(g["edges"])
    if not 1 <= count <= MAX_LAYERS:
        raise ValueError(f"layer '{g.name}' has {count} edges")
    for j in range(count):
        e = g["edges"][str(j)]
        a = e.attrs
        conv = bool(_int(a["conv"]))
        edges.append(Edge(_str(a["source"]), _array(e["weight"], np.int64),
                          _pair(a, "stride", conv), _pair(a, "padding", conv), _pair(a, "dilation", conv),
                          _int(a["groups"]), bool(_int(a["flatten"])), _int(a["delay"])))
    a = g.attrs
    return Layer(_str(a["name"]), _ints(a["shape"]), tuple(edges), _array(g["bias"], np.int64),
                 _int(a["vth"]), _int(a["i_decay"]), _int(a["v_decay"]), bool(_int(a["spiking"])), _int(a["depth"]))


def _pair(attrs, key: str, conv: bool) -> tuple[int, int] | None:
    if not conv:
        return None
    pair = _ints(attrs[key])
    if len(pair) != 2:
        raise ValueError(f"{key} must be an (H, W) pair, got {pair}")
    return pair


def _within(value: float, low: float, high: float, what: str) -> None:
    if not (low <= value <= high):
        raise ValueError(f"{what} is {value}, outside {low}..{high}")


def check_net(net: FixedNet) -> None:
    """ValueError naming the first field that is out of Lava's range or inconsistent with the others.

    Checked: sizes, every integer against Lava's fixed-point widths, every edge's weight shape against
    its source and target layers (conv output size included), sources defined before use, depths and
    delays as `lower` computes them, and the readout.
    """
    _within(len(net.input_shape), 1, 3, "the input rank")
    for d in net.input_shape:
        _within(d, 1, MAX_NEURONS, "an input dimension")
    _within(net.timesteps, 1, MAX_TIMESTEPS, "timesteps")
    _within(net.input_max, 1, INPUT_MAX, "input_max")
    for what, value in (("input_scale", net.input_scale), ("readout_scale", net.readout_scale)):
        if not np.isfinite(value) or value <= 0:
            raise ValueError(f"{what} is {value}, expected a positive finite number")
    if net.readout_bias.ndim != 1 or not np.isfinite(net.readout_bias).all():
        raise ValueError("readout_bias must be a 1-D array of finite numbers")
    shapes: dict[str, tuple[int, ...]] = {INPUT: net.input_shape}
    depth = {INPUT: 0}
    total = 0
    for layer in net.layers:
        _check_layer(layer, shapes, depth)
        total += layer.neurons
        if total > MAX_NEURONS:
            raise ValueError(f"the network has more than {MAX_NEURONS} neurons")
        shapes[layer.name] = layer.shape
    if net.output != net.layers[-1].name:
        raise ValueError(f"the output '{net.output}' is not the last layer")
    if any(not layer.spiking for layer in net.layers[:-1]):
        raise ValueError("only the output layer may be a non-spiking readout")
    output = net.layers[-1]
    if not output.spiking and net.readout_bias.size not in (0, output.shape[0]):
        raise ValueError(f"readout_bias has {net.readout_bias.size} values for {output.shape[0]} outputs")


def _check_layer(layer: Layer, shapes: dict[str, tuple[int, ...]], depth: dict[str, int]) -> None:
    where = f"layer '{layer.name}'"
    if layer.name in shapes:
        raise ValueError(f"{where} is defined twice (or is named '{INPUT}')")
    if len(layer.shape) not in (1, 3) or min(layer.shape) < 1 or layer.neurons > MAX_NEURONS:
        raise ValueError(f"{where} has shape {layer.shape}, expected (C, H, W) or (F,) of positive sizes")
    if layer.bias.shape != (layer.shape[0],) or np.abs(layer.bias).max(initial=0) > BIAS_MAX:
        raise ValueError(f"{where}: bias must be {layer.shape[0]} integers within +-{BIAS_MAX}")
    _within(layer.vth, 0, VTH_MAX, f"{where}: vth")
    _within(layer.i_decay, 0, DECAY_ONE, f"{where}: i_decay")
    _within(layer.v_decay, 0, DECAY_ONE, f"{where}: v_decay")
    if not layer.edges:
        raise ValueError(f"{where} has no synapses")
    for edge in layer.edges:
        if edge.source not in shapes:
            raise ValueError(f"{where} reads '{edge.source}', which is not defined before it")
        _check_edge(edge, shapes[edge.source], layer.shape, where)
    expected = max(depth[e.source] for e in layer.edges) + 1
    if layer.depth != expected or any(e.delay != expected - depth[e.source] - 1 for e in layer.edges):
        raise ValueError(f"{where} has depth {layer.depth} and delays {[e.delay for e in layer.edges]}, "
                         f"inconsistent with its sources (depth {expected})")
    depth[layer.name] = layer.depth


def _check_edge(edge: Edge, source: tuple[int, ...], target: tuple[int, ...], where: str) -> None:
    w = edge.weight
    if w.size and np.abs(w).max() > WEIGHT_MAX:
        raise ValueError(f"{where}: weights beyond Lava's 8-bit synapses (|w| <= {WEIGHT_MAX})")
    _within(edge.delay, 0, MAX_DELAY, f"{where}: delay")
    if not edge.is_conv:
        fan_in = int(np.prod(source))
        if w.shape != (target[0], fan_in) or len(target) != 1 or edge.flatten != (len(source) == 3):
            raise ValueError(f"{where}: dense weight {w.shape} does not connect {source} to {target}")
        return
    if len(source) != 3 or len(target) != 3 or w.ndim != 4:
        raise ValueError(f"{where}: conv weight {w.shape} does not connect {source} to {target}")
    groups = edge.groups
    if groups < 1 or source[0] % groups or target[0] % groups or w.shape[:2] != (target[0], source[0] // groups):
        raise ValueError(f"{where}: conv weight {w.shape} with groups {groups} does not connect {source} to {target}")
    for axis in range(2):
        if edge.stride[axis] < 1 or edge.dilation[axis] < 1 or edge.padding[axis] < 0:
            raise ValueError(f"{where}: stride, dilation must be positive and padding non-negative")
        size = (source[1 + axis] + 2 * edge.padding[axis] - edge.dilation[axis] * (w.shape[2 + axis] - 1) - 1)
        if size < 0 or size // edge.stride[axis] + 1 != target[1 + axis]:
            raise ValueError(f"{where}: conv output size does not match the layer shape {target}")
