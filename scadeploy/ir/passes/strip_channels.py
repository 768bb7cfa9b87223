"""strip_channels: physically remove masked channels that are provably silent.

Requires: a verified graph (BN may still be present) and masks {producer node: bool[C_out]},
True = kept.
Ensures: for every channel group (see channel_groups), channel c is removed iff it is masked in
every producer of the group, the group is not fixed, and every conv/linear reading the group
sees an exact zero in channel c at every step (see silence). Removed channels vanish from the
producers' outputs, BN, neurons, pools, element-wise ops (add, mul, complement, scale: a removed
channel of a product is zero because one factor is, and 1 - 0 read by a conv keeps the channel) and the
consumers' inputs; after a flatten, channel c is
features [c*H*W, (c+1)*H*W) of every member (a BN1d, neuron or add there acts per feature).
The stripped graph computes exactly what the masked graph computes.
Every masked channel that is kept is reported with the reason.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch

from scadeploy.errors import MaskError
from scadeploy.ir.graph import Graph, Node, Op
from scadeploy.ir.ops import PRODUCER_OPS, infer_shape
from scadeploy.ir.passes.channel_groups import ChannelGroup, ChannelGroups, find_channel_groups
from scadeploy.ir.passes.silence import Known, find_known_channels
from scadeploy.ir.verify import verify


@dataclass(frozen=True)
class KeptChannel:
    """A masked channel that was not removed, and why."""

    layer: str
    channel: int
    reason: str


@dataclass(frozen=True)
class LayerChannels:
    layer: str
    before: int
    after: int
    masked: int


@dataclass
class StripReport:
    layers: list[LayerChannels] = field(default_factory=list)
    kept: list[KeptChannel] = field(default_factory=list)
    # node -> surviving indices along its first per-sample axis, if cut: channels of a (C, H, W) map,
    # features of a flattened one (channel c owns features [c*H*W, (c+1)*H*W))
    kept_index: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def removed(self) -> int:
        return sum(row.before - row.after for row in self.layers)

    def to_dict(self) -> dict:
        return {
            "layers": [dataclasses.asdict(r) for r in self.layers],
            "kept_masked_channels": [dataclasses.asdict(k) for k in self.kept],
        }


def _check_masks(graph: Graph, masks: dict[str, torch.Tensor]) -> None:
    for name, mask in masks.items():
        if name not in graph or graph[name].op not in PRODUCER_OPS:
            producers = ", ".join(n.name for n in graph.of_op(*PRODUCER_OPS))
            raise MaskError(f"mask '{name}' names no conv or linear layer of the model",
                            f"layers that take masks: {producers}")
        channels = graph[name].shape[0]
        if tuple(mask.shape) != (channels,):
            raise MaskError(f"mask '{name}' has shape {tuple(mask.shape)}, expected ({channels},)")


def _why_not_silent(group: ChannelGroup, graph: Graph, known: dict[str, Known], c: int) -> str | None:
    """None if channel c reads as an exact zero at every consumer of the group and no neuron of the group
    fires in it, else why not. (A product can read a firing channel as zero when its other factor is
    zero; the channel is still kept, so that a removed channel is always a silent one.)"""
    for member in group.members:
        if known[member].zero()[c]:
            continue
        fires = graph[member].op is Op.NEURON
        if fires or any(r.op in PRODUCER_OPS for r in graph.consumers(member)):
            if known[member].tie[c]:
                return (f"not provably silent: a neuron before '{member}' comes within float32 rounding of its "
                        "threshold, so float32 runtimes may fire where float64 does not")
            if not known[member].known[c]:
                return f"not provably silent: '{member}' depends on the input (is the filter zeroed?)"
            values = ", ".join(f"{v:g}" for v in known[member].values[:, c].tolist())
            return f"not silent: '{member}' is the constant [{values}] over time, not zero"
    return None


def _decide(graph: Graph, groups: ChannelGroups, masks: dict[str, torch.Tensor],
            known: dict[str, Known]) -> tuple[dict[str, torch.Tensor], list[KeptChannel]]:
    """Channels kept per group key, and the masked channels that had to stay."""
    keep: dict[str, torch.Tensor] = {}
    kept: list[KeptChannel] = []
    for key, group in groups.groups.items():
        keep[key] = torch.ones(group.channels, dtype=torch.bool)
        nothing = torch.zeros(group.channels, dtype=torch.bool)
        masked_in = [~masks[p].to(torch.bool) if p in masks else nothing for p in group.producers]
        if not masked_in:
            continue
        anywhere = torch.stack(masked_in).any(0)
        everywhere = torch.stack(masked_in).all(0)
        for c in anywhere.nonzero().flatten().tolist():
            layer = next(p for p, m in zip(group.producers, masked_in, strict=True) if m[c])
            if group.fixed_reason:
                reason = f"its channel group {group.fixed_reason}"
            elif not everywhere[c]:
                others = [p for p, m in zip(group.producers, masked_in, strict=True) if not m[c]]
                reason = f"residual group: not masked in {', '.join(others)}"
            else:
                reason = _why_not_silent(group, graph, known, c)
            if reason is None:
                keep[key][c] = False
            else:
                kept.append(KeptChannel(layer, c, reason))
        if not keep[key].any():  # an empty layer breaks every runtime: keep one (silent) channel
            keep[key][0] = True
            kept.append(KeptChannel(group.producers[0], 0, "every channel is masked; one is kept so the layer "
                                    "is not empty"))
    return keep, kept


def _input_index(graph: Graph, groups: ChannelGroups, keep: dict[str, torch.Tensor], source: str) -> torch.Tensor:
    """Indices of the channels (or, after a flatten, features) of `source` that survive, in order."""
    channels = keep[groups.group_of[source]].nonzero().flatten()
    block = groups.block(source)
    return (channels[:, None] * block + torch.arange(block)[None, :]).flatten()


def _slice_node(node: Node, out_index: torch.Tensor | None, in_index: torch.Tensor | None) -> Node:
    params = dict(node.params)
    attrs = node.attrs
    if node.op in PRODUCER_OPS:
        weight = params["weight"]
        if out_index is not None:
            weight = weight[out_index]
            if "bias" in params:
                params["bias"] = params["bias"][out_index]
        if in_index is not None:
            weight = weight[:, in_index]
        params["weight"] = weight.contiguous()
        if node.op is Op.CONV2D:
            # NOTE: a grouped conv's weight holds in_channels / groups inputs per filter (its channels are fixed)
            attrs = dataclasses.replace(attrs, out_channels=weight.shape[0],
                                        in_channels=weight.shape[1] * attrs.groups)
        else:
            attrs = dataclasses.replace(attrs, out_features=weight.shape[0], in_features=weight.shape[1])
    elif node.op is Op.BATCHNORM and out_index is not None:
        params = {k: v[out_index].contiguous() for k, v in params.items()}
        attrs = dataclasses.replace(attrs, num_features=len(out_index))
    return node.with_(attrs=attrs, params=params)


def strip_channels(graph: Graph, masks: dict[str, torch.Tensor]) -> tuple[Graph, StripReport]:
    _check_masks(graph, masks)
    groups = find_channel_groups(graph)
    known = find_known_channels(graph, groups)
    keep, kept = _decide(graph, groups, masks, known)
    nodes: list[Node] = []
    shapes: dict[str, tuple[int, ...]] = {}
    report = StripReport(kept=kept)
    for node in graph.nodes:
        own = keep[groups.group_of[node.name]]
        out_index = None if bool(own.all()) else _input_index(graph, groups, keep, node.name)
        if out_index is not None:
            report.kept_index[node.name] = out_index
        if node.op is Op.BATCHNORM or node.op in PRODUCER_OPS:
            in_index = None
            if node.op in PRODUCER_OPS and not bool(keep[groups.group_of[node.inputs[0]]].all()):
                in_index = _input_index(graph, groups, keep, node.inputs[0])
            new = _slice_node(node, out_index, in_index)
        else:
            new = node
        shape = new.shape if new.op is Op.INPUT else infer_shape(new.op, new.attrs, [shapes[i] for i in new.inputs])
        shapes[node.name] = shape
        nodes.append(new.with_(shape=shape))
        if node.op in PRODUCER_OPS:
            masked = int((~masks[node.name]).sum()) if node.name in masks else 0
            report.layers.append(LayerChannels(node.name, node.shape[0], shape[0], masked))
    return verify(graph.with_nodes(nodes)), report
