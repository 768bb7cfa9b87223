"""Neurons in ONNX Runtime's blocked layout: the reorders around each neuron removed from the optimized model.

ONNX Runtime's CPU provider runs convolutions in a blocked layout (NCHWc: 8 channels per block with
AVX2, 16 with AVX-512) and, having no blocked kernels for a neuron's Split, Less, Cast, Mul, Not and
Concat, wraps every neuron in a `ReorderOutput` (blocked -> NCHW) and a `ReorderInput` (back). Those
ops are element-wise, or split and concatenate along the batch axis, so they compute the same
numbers in either layout: this rewrite lets them run on the blocked tensors and drops both reorders.
A max pool between a neuron and the next convolution becomes ONNX Runtime's blocked max pool.

It works on the model ONNX Runtime optimized on this machine (`SessionOptions.optimized_model_filepath`),
because the block size is the machine's; the result is run with graph optimizations off.

Requires: an ONNX Runtime-optimized model (level `all`, NCHWc on). Ensures: every region that
starts at a `ReorderOutput` and reaches only layout-free ops before `ReorderInput`s runs blocked,
both reorders gone; padded lanes of a block (channels not a multiple of the block) stay silent,
since a zero input never reaches a positive threshold; anything else is left as it was.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from scadeploy.backends.onnx.runtime import ort_session

NCHWC = "com.microsoft.nchwc"
LAYOUT_FREE = frozenset({"Add", "Sub", "Mul", "Div", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not",
                         "Cast", "Where", "Identity"})
BATCH_AXIS_OPS = frozenset({"Split", "Concat"})  # layout-free when they work along axis 0
POOLS = frozenset({"MaxPool"})  # has a blocked twin in ONNX Runtime


def optimized_model(model: bytes | str | Path, threads: int = 1) -> onnx.ModelProto:
    """The model as ONNX Runtime's CPU provider optimizes it on this machine (NCHWc included)."""
    with tempfile.TemporaryDirectory() as tmp:
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.optimized_model_filepath = str(Path(tmp) / "optimized.onnx")
        so.intra_op_num_threads = threads
        so.log_severity_level = 3  # the warning that the file is specific to this machine
        ort.InferenceSession(model if isinstance(model, bytes) else str(model), so,
                             providers=["CPUExecutionProvider"])
        return onnx.load(so.optimized_model_filepath)


def _axis(node: onnx.NodeProto) -> int:
    return next((onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)


def _channels_first(node: onnx.NodeProto) -> bool:
    return not any(a.name == "channels_last" and onnx.helper.get_attribute_value(a) for a in node.attribute)


def _movable(node: onnx.NodeProto) -> bool:
    if node.domain not in ("", "ai.onnx"):
        return False
    if node.op_type in BATCH_AXIS_OPS:
        return _axis(node) == 0
    return node.op_type in LAYOUT_FREE or node.op_type in POOLS


def _scalars(model: onnx.ModelProto) -> set[str]:
    return {t.name for t in model.graph.initializer if np.prod(t.dims, dtype=np.int64) <= 1}


def _region(start: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]], scalars: set[str],
            graph_outputs: set[str]) -> tuple[list[onnx.NodeProto], list[onnx.NodeProto]] | None:
    """(layout-free nodes, closing ReorderInputs) reachable from a ReorderOutput, or None when it escapes."""
    inside: dict[int, onnx.NodeProto] = {}
    closing: dict[int, onnx.NodeProto] = {}
    blocked = {start.output[0]}
    frontier = [start.output[0]]
    while frontier:
        name = frontier.pop()
        if name in graph_outputs:
            return None
        for node in consumers.get(name, []):
            if node.domain == NCHWC and node.op_type == "ReorderInput" and _channels_first(node):
                closing[id(node)] = node
            elif _movable(node):
                if id(node) not in inside:
                    inside[id(node)] = node
                    blocked.update(node.output)
                    frontier.extend(node.output)
            else:
                return None
    for node in inside.values():  # every other input must be a broadcast scalar or blocked too
        if any(i and i not in blocked and i not in scalars for i in node.input):
            return None
    return list(inside.values()), list(closing.values())


def keep_blocked(model: onnx.ModelProto) -> tuple[onnx.ModelProto, int]:
    """The optimized model with the reorders around layout-free regions removed; also how many regions."""
    graph = model.graph
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    scalars = _scalars(model)
    outputs = {o.name for o in graph.output}
    rename: dict[str, str] = {}
    dropped: set[int] = set()
    pools: set[int] = set()
    regions = 0
    for node in graph.node:
        if node.domain != NCHWC or node.op_type != "ReorderOutput" or not _channels_first(node):
            continue
        found = _region(node, consumers, scalars, outputs)
        if found is None:
            continue
        inside, closing = found
        regions += 1
        rename[node.output[0]] = node.input[0]
        dropped.add(id(node))
        for reorder in closing:
            rename[reorder.output[0]] = reorder.input[0]
            dropped.add(id(reorder))
        pools.update(id(n) for n in inside if n.op_type in POOLS)
    nodes = []
    for node in graph.node:
        if id(node) in dropped:
            continue
        copy = onnx.NodeProto()
        copy.CopyFrom(node)
        copy.input[:] = [rename.get(i, i) for i in node.input]
        if id(node) in pools:
            copy.domain = NCHWC
        nodes.append(copy)
    result = onnx.ModelProto()
    result.CopyFrom(model)
    del result.graph.node[:]
    result.graph.node.extend(nodes)
    del result.graph.value_info[:]  # shapes inside the regions are blocked now
    return result, regions


def blocked_model(model: bytes | str | Path, threads: int = 1) -> tuple[bytes, int]:
    """The serialized blocked model for this machine (run it with graph optimizations off), and its regions."""
    rewritten, regions = keep_blocked(optimized_model(model, threads))
    return rewritten.SerializeToString(), regions


def blocked_session(model: bytes | str | Path, threads: int = 0, spinning: bool = True) -> ort.InferenceSession:
    """A CPU session of DIR/model.onnx with its neurons in the blocked layout: how to deploy `onnx-blocked`."""
    return ort_session(blocked_model(model, threads)[0], "cpu", threads, "disable", spinning)

