"""Model cost metrics: parameters, dense MACs, SynOps (NeuroBench definitions) and a compute-energy estimate.

SynOps follow NeuroBench's `SynapticOperations`: for every conv/linear call, inputs and weights are
binarized (non-zero -> 1, bias dropped) and the layer is re-run, so only non-zero weight x non-zero
input pairs count, exactly at padded borders. A call whose inputs all lie in {0, 1, -1} counts
effective ACs, any other call (analog frames, averaged spikes) effective MACs. `dense` is the same
count with all-ones inputs and weights. Counts are per sample and accumulate over the T steps; a
direct-encoded frame shown at every step is counted at every step, as the network sees it.
NOTE: integer spike counts (e.g. spikes added by a residual) are not in {0, 1, -1}, so they count as MACs.
Element-wise ops (add, mul, complement, scale) weigh nothing and are not synaptic operations; they
count only through the layer that reads them: products and complements of spikes (SEW AND/IAND) are
0/1, so that layer counts ACs; a scaled spike map (x * c, where no weight could absorb c) counts MACs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from scadeploy.backends.torch_ref import Value, run_graph
from scadeploy.ir.cost import dense_macs as node_dense_macs
from scadeploy.ir.graph import Encoding, Graph, Node, Op

E_MAC_PJ = 4.6  # 45 nm fp32 multiply (3.7 pJ) + add (0.9 pJ), Horowitz ISSCC 2014
E_AC_PJ = 0.9  # 45 nm fp32 add
ENERGY_LABEL = "compute-only estimate (45 nm fp32: E_MAC 4.6 pJ, E_AC 0.9 pJ; no memory or data movement)"


@dataclass(frozen=True)
class LayerSynOps:
    """One conv/linear layer, per sample over all steps."""

    name: str
    op: str
    dense: float
    effective_acs: float
    effective_macs: float
    input_rate: float  # fraction of non-zero inputs


@dataclass(frozen=True)
class SynOpsReport:
    samples: int
    timesteps: int
    layers: list[LayerSynOps]

    @property
    def dense(self) -> float:
        return sum(r.dense for r in self.layers)

    @property
    def effective_acs(self) -> float:
        return sum(r.effective_acs for r in self.layers)

    @property
    def effective_macs(self) -> float:
        return sum(r.effective_macs for r in self.layers)

    def to_dict(self) -> dict:
        totals = {"dense": self.dense, "effective_acs": self.effective_acs, "effective_macs": self.effective_macs}
        return {"samples": self.samples, "timesteps": self.timesteps, "per_sample": True,
                "layers": [asdict(r) for r in self.layers], "total": totals}


def count_params(graph: Graph) -> int:
    """Trainable parameters (weights and biases), zeros included."""
    return graph.num_params()


def dense_macs(graph: Graph) -> int:
    """MACs a dense runtime computes per sample for one inference (every weight at every position, T steps).

    Layers after the time mean run once; every other conv/linear runs at each of the T steps.
    """
    total = 0
    timed = True
    for node in graph.nodes:
        if node.op is Op.MEAN_OVER_TIME:
            timed = False
        total += node_dense_macs(node) * (graph.timesteps if timed else 1)
    return total


def _binary_counts(node: Node, x: torch.Tensor, weight: torch.Tensor) -> float:
    """sum(layer(x, weight)) without bias, in float64 (exact integers far beyond these sizes)."""
    a = node.attrs
    if node.op is Op.CONV2D:
        return float(F.conv2d(x, weight, None, a.stride, a.padding, a.dilation, a.groups).sum())
    return float(F.linear(x, weight).sum())


def _layer_synops(node: Node, value: Value, timesteps: int) -> LayerSynOps:
    x = value.tensor.double()
    frames = x if (value.static or not value.timed) else x.flatten(0, 1)
    samples = x.shape[0] if (value.static or not value.timed) else x.shape[1]
    repeat = timesteps if value.static else 1  # a static frame is seen at every step
    weight = node.params["weight"].double()
    effective = _binary_counts(node, (frames != 0).double(), (weight != 0).double()) * repeat / samples
    steps = timesteps if (value.static or value.timed) else 1
    dense = _binary_counts(node, torch.ones_like(frames[:1]), torch.ones_like(weight)) * steps
    binary = bool(((frames == 0) | (frames == 1) | (frames == -1)).all())
    return LayerSynOps(node.name, node.op.value, dense, effective if binary else 0.0,
                       0.0 if binary else effective, float((frames != 0).double().mean()))


def measure_synops(graph: Graph, x: torch.Tensor) -> SynOpsReport:
    """Run the torch reference on real inputs `x` and count every conv/linear layer's synaptic operations."""
    rows: list[LayerSynOps] = []

    def observe(node: Node, args: list[Value]) -> None:
        if node.op in (Op.CONV2D, Op.LINEAR):
            rows.append(_layer_synops(node, args[0], graph.timesteps))

    run_graph(graph, x.float(), observe=observe)
    samples = x.shape[0] if graph.input.attrs.encoding is Encoding.DIRECT else x.shape[1]
    return SynOpsReport(int(samples), graph.timesteps, rows)


def compute_energy_uj(acs: float, macs: float) -> float:
    """E = E_MAC * MACs + E_AC * ACs in microjoules (a compute-only estimate)."""
    return (E_MAC_PJ * macs + E_AC_PJ * acs) * 1e-6


def energy_estimate(report: SynOpsReport) -> dict:
    """Per-sample compute energy E = E_MAC * MACs + E_AC * ACs (a compute-only estimate)."""
    return {"label": ENERGY_LABEL, "e_mac_pj": E_MAC_PJ, "e_ac_pj": E_AC_PJ,
            "effective_mac_uj": compute_energy_uj(0.0, report.effective_macs),
            "effective_ac_uj": compute_energy_uj(report.effective_acs, 0.0),
            "total_uj": compute_energy_uj(report.effective_acs, report.effective_macs),
            "dense_mac_uj": compute_energy_uj(0.0, report.dense)}
