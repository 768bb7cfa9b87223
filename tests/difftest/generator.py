"""Random valid spiking networks for differential testing, from a seed: a JSON-able spec and its module.

A spec is a list of layer dicts interpreted by `SpecNet`, a plain spikingjelly module (so the tracer
is under test too). The generator tracks the feature shape so every spec is valid: convs with random
stride, padding, dilation, groups and bias; BN with random statistics; IF, LIF and PLIF neurons with
random thresholds, resets and `decay_input`; max and average pooling; residual adds of conv blocks
(also after flatten); SEW spike products (AND, IAND) where the IR has them; flatten, linear,
dropout; a mean-over-time or a per-step head. Masks are SCA-style (filter, bias, BN gamma and beta
zeroed), with the traps that break naive stripping: a masked channel whose BN shift sits just
below, at or above the threshold (a constant input that may fire), adds whose producers are
masked differently, and (with masks read off the weights) a layer whose every channel is masked.
"""

from __future__ import annotations

import copy
import random
from dataclasses import dataclass, field

import torch
from spikingjelly.activation_based import layer, neuron
from torch import nn

from scadeploy.ir.graph import Op
from scadeploy.models.common import MeanOverTime

Spec = list[dict]
HAS_PRODUCTS = hasattr(Op, "MUL") and hasattr(Op, "COMPLEMENT")


@dataclass
class Case:
    """One generated network: its spec, input layout, masks policy and seed (the seed rebuilds it)."""

    seed: int
    spec: Spec
    input_shape: tuple[int, int, int]
    timesteps: int
    encoding: str  # "direct" (frames) or "sequence" (0/1 events)
    samples: int = 4
    auto_masks: bool = False
    traps: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return (f"seed {self.seed}: input {self.input_shape}, T={self.timesteps}, {self.encoding}, "
                f"{'auto' if self.auto_masks else 'given'} masks, spec {self.spec}")


def _neuron_spec(rng: random.Random) -> dict:
    kind = rng.choice(["if", "lif", "plif"])
    v_reset = rng.choice([0.0, 0.0, 0.0, -0.5, -0.5, 0.25, 0.0, None])
    return {"op": "neuron", "kind": kind, "v_threshold": rng.choice([1.0, 0.5, 0.75, 1.25]),
            "v_reset": v_reset, "tau": rng.choice([1.5, 2.0, 4.0 / 3.0]), "decay_input": rng.random() < 0.7}


def _conv_spec(rng: random.Random, c_in: int, size: int, c_out: int | None = None, keep_size: bool = False) -> dict:
    c_out = c_out or rng.choice([2, 3, 4, 6, 8])
    if keep_size:
        k, stride, dilation = rng.choice([1, 3]), 1, 1
        padding = k // 2
    else:
        k = rng.choice([1, 2, 3])
        stride = rng.choice([1, 1, 2]) if size >= 4 else 1
        dilation = rng.choice([1, 1, 2]) if k > 1 and size >= 5 else 1
        padding = rng.choice([0, k // 2])
        while (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1 < 1:
            k, dilation, padding = 1, 1, 0
    common = [g for g in (2, 3) if c_in % g == 0 and c_out % g == 0]
    groups = rng.choice(common) if common and rng.random() < 0.2 else 1
    return {"op": "conv", "in": c_in, "out": c_out, "k": k, "stride": stride, "padding": padding,
            "dilation": dilation, "groups": groups, "bias": rng.random() < 0.4}


def _out_size(size: int, s: dict) -> int:
    return (size + 2 * s["padding"] - s["dilation"] * (s["k"] - 1) - 1) // s["stride"] + 1


def _unit(rng: random.Random, conv: dict) -> Spec:
    """conv, an optional BN, a neuron."""
    return [conv] + ([{"op": "bn"}] if rng.random() < 0.7 else []) + [_neuron_spec(rng)]


def random_case(seed: int) -> Case:
    """A valid network from `seed` (the same seed gives the same case)."""
    rng = random.Random(seed)
    channels, size = rng.choice([1, 2, 3]), rng.choice([4, 5, 6, 8])
    shape = (channels, size, size)
    spec: Spec = []
    c = channels
    for _ in range(rng.randint(1, 3)):
        choice = rng.random()
        if choice < 0.45 or not spec:
            conv = _conv_spec(rng, c, size)
            spec += _unit(rng, conv)
            c, size = conv["out"], _out_size(size, conv)
        elif choice < 0.7:
            body = _unit(rng, _conv_spec(rng, c, size, c_out=c, keep_size=True))
            kind = rng.choice(["add", "add", "and", "iand"] if HAS_PRODUCTS else ["add"])
            if kind == "add":
                shortcut = None if rng.random() < 0.5 else _unit(rng, _conv_spec(rng, c, size, c_out=c,
                                                                                keep_size=True))[:-1]
                spec.append({"op": "residual", "body": body, "shortcut": shortcut})
            else:
                spec.append({"op": "sew", "fn": kind, "body": body})
        elif size >= 2:
            kind = rng.choice(["maxpool", "avgpool"])
            k = 2 if size >= 2 else 1
            spec.append({"op": kind, "k": k, "stride": k, "padding": 0})
            size = (size - k) // k + 1
    spec.append({"op": "flatten"})
    features = c * size * size
    if rng.random() < 0.5:
        width = rng.choice([4, 8, 12])
        spec += [{"op": "linear", "in": features, "out": width, "bias": rng.random() < 0.6}, _neuron_spec(rng)]
        features = width
    if rng.random() < 0.3:
        body = [{"op": "linear", "in": features, "out": features, "bias": True}, _neuron_spec(rng)]
        spec.append({"op": "residual", "body": body, "shortcut": None})
    if rng.random() < 0.3:
        spec.append({"op": "dropout"})
    per_step = rng.random() < 0.5
    if not per_step:
        spec.append({"op": "mean"})
    spec.append({"op": "linear", "in": features, "out": rng.choice([2, 3, 5]), "bias": rng.random() < 0.7})
    return Case(seed, spec, shape, rng.randint(1, 5), rng.choice(["direct", "direct", "sequence"]),
                auto_masks=rng.random() < 0.3)


def _module(s: dict) -> nn.Module:
    op = s["op"]
    if op == "conv":
        return layer.Conv2d(s["in"], s["out"], s["k"], s["stride"], s["padding"], s["dilation"], s["groups"],
                            s["bias"])
    if op == "linear":
        return layer.Linear(s["in"], s["out"], s["bias"])
    if op == "neuron":
        common = {"v_threshold": s["v_threshold"], "v_reset": s["v_reset"]}
        if s["kind"] == "if":
            return neuron.IFNode(**common)
        if s["kind"] == "lif":
            return neuron.LIFNode(tau=s["tau"], decay_input=s["decay_input"], **common)
        return neuron.ParametricLIFNode(init_tau=s["tau"], decay_input=s["decay_input"], **common)
    if op == "maxpool":
        return layer.MaxPool2d(s["k"], s["stride"], s["padding"])
    if op == "avgpool":
        return layer.AvgPool2d(s["k"], s["stride"], s["padding"])
    if op == "flatten":
        return layer.Flatten()
    if op == "dropout":
        return layer.Dropout(0.5)
    if op == "mean":
        return MeanOverTime()
    raise ValueError(f"no module for {op}")


class SpecNet(nn.Module):
    """The network a spec describes; forward() walks the spec (static Python, so torch.fx unrolls it)."""

    def __init__(self, spec: Spec) -> None:
        super().__init__()
        self.spec = copy.deepcopy(spec)
        self.layers = nn.ModuleDict()
        self._build(self.spec, "")

    def _build(self, spec: Spec, prefix: str) -> None:
        for i, s in enumerate(spec):
            key = f"{prefix}{i}"
            s["key"] = key
            if s["op"] in ("residual", "sew"):
                self._build(s["body"], f"{key}_body_")
                if s.get("shortcut"):
                    self._build(s["shortcut"], f"{key}_short_")
            elif s["op"] == "bn":
                self.layers[key] = None  # sized in `_size_batchnorms`
            else:
                self.layers[key] = _module(s)

    def _run(self, spec: Spec, x: torch.Tensor) -> torch.Tensor:
        for s in spec:
            if s["op"] == "residual":
                shortcut = self._run(s["shortcut"], x) if s.get("shortcut") else x
                x = shortcut + self._run(s["body"], x)
            elif s["op"] == "sew":
                y = self._run(s["body"], x)
                x = x * y if s["fn"] == "and" else x * (1.0 - y)
            else:
                x = self.layers[s["key"]](x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(self.spec, x)


def _walk(spec: Spec):
    for s in spec:
        yield s
        for part in ("body", "shortcut"):
            if s.get(part):
                yield from _walk(s[part])


def build(case: Case) -> tuple[nn.Module, dict[str, torch.Tensor] | None, torch.Tensor]:
    """(module in eval mode with realistic BN statistics and SCA masks applied, masks or None, inputs)."""
    torch.manual_seed(case.seed)
    rng = random.Random(case.seed + 1)
    net = SpecNet(case.spec)
    _size_batchnorms(net, net.spec, case.input_shape[0])
    masks = _apply_masks(net, net.spec, rng, case)
    generator = torch.Generator().manual_seed(case.seed)
    if case.encoding == "direct":
        x = torch.rand(case.samples, *case.input_shape, generator=generator) * rng.choice([1.0, 2.0, 4.0])
    else:
        x = (torch.rand(case.timesteps, case.samples, *case.input_shape, generator=generator) < 0.4).float()
    return net.eval(), (None if case.auto_masks else masks), x


def _size_batchnorms(net: SpecNet, spec: Spec, channels: int) -> int:
    """Create each BN with its input's width and random running statistics; returns the output width."""
    for s in spec:
        if s["op"] in ("conv", "linear"):
            channels = s["out"]
        elif s["op"] == "bn":
            bn = layer.BatchNorm2d(channels)
            with torch.no_grad():
                bn.running_mean.uniform_(-0.5, 0.5)
                bn.running_var.uniform_(0.5, 2.0)
                bn.weight.uniform_(0.5, 1.5)
                bn.bias.uniform_(-0.3, 0.6)
            net.layers[s["key"]] = bn
        elif s["op"] in ("residual", "sew"):
            _size_batchnorms(net, s["body"], channels)
            if s.get("shortcut"):
                _size_batchnorms(net, s["shortcut"], channels)
    return channels


@torch.no_grad()
def _apply_masks(net: SpecNet, spec: Spec, rng: random.Random, case: Case) -> dict[str, torch.Tensor]:
    """SCA-style masks on every conv/linear but the head; traps on masked channels' BN shifts."""
    flat = list(_walk(spec))
    head = flat[-1]["key"]
    masks = {}
    whole = random.Random(case.seed * 7 + 3)  # its own stream: the trap leaves every other draw as it was
    for i, s in enumerate(flat):
        if s["op"] not in ("conv", "linear") or s["key"] == head:
            continue
        out = s["out"]
        keep = torch.tensor([rng.random() < 0.6 for _ in range(out)])
        if not bool(keep.any()):
            keep[rng.randrange(out)] = True
        if case.auto_masks and whole.random() < 0.05:  # a fully masked layer (given masks refuse it)
            keep[:] = False
            case.traps.append(f"{s['key']} fully masked")
        module = net.layers[s["key"]]
        module.weight[~keep] = 0
        if module.bias is not None:
            module.bias[~keep] = 0
        following = flat[i + 1] if i + 1 < len(flat) else None
        if following is not None and following["op"] == "bn":
            bn = net.layers[following["key"]]
            bn.weight[~keep] = 0
            bn.bias[~keep] = 0
            threshold = next((f["v_threshold"] for f in flat[i + 2:i + 3] if f["op"] == "neuron"), None)
            if threshold is not None and not bool(keep.all()) and rng.random() < 0.3:
                pruned = int((~keep).nonzero()[0])
                shift = rng.choice([threshold - 2**-20, threshold, threshold + 2**-20, 0.5 * threshold])
                bn.bias[pruned] = shift  # constant input near the threshold: silent or not, by a hair
                case.traps.append(f"{following['key']}[{pruned}] shift {shift!r} vs threshold {threshold}")
        masks[f"layers.{s['key']}"] = keep
    return masks
