"""A stable text dump of a graph: one line per node, for `scadeploy inspect` and snapshot tests."""

from __future__ import annotations

import dataclasses
import enum

from scadeploy.ir.graph import Graph, Node


def _value(v: object) -> str:
    if isinstance(v, enum.Enum):
        return str(v.value)
    if isinstance(v, tuple):
        return "x".join(str(x) for x in v)
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def format_attrs(node: Node) -> str:
    fields = dataclasses.fields(node.attrs)
    return " ".join(f"{f.name}={_value(getattr(node.attrs, f.name))}" for f in fields)


def format_node(node: Node) -> str:
    shape = "x".join(str(d) for d in node.shape)
    inputs = ",".join(node.inputs) or "-"
    line = f"{node.name:<24} {node.op.value:<14} {inputs:<24} [{shape}]"
    attrs = format_attrs(node)
    params = node.num_params()
    return line + (f" {attrs}" if attrs else "") + (f" params={params}" if params else "")


def format_graph(graph: Graph) -> str:
    header = f"graph T={graph.timesteps} nodes={len(graph.nodes)} params={graph.num_params()}"
    return "\n".join([header, *(format_node(n) for n in graph.nodes)])
