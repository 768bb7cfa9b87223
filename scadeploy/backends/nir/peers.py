"""Run a NIR file through other frameworks' NIR importers, and compare them with the torch reference.

Peers no one here wrote are the proof that `model.nir` means what scadeploy meant. Each runs the
graph step by step from its initial state (state passed back in at every step), records every
neuron layer's spikes `[T, N, ...]` through forward hooks, and returns the per-step outputs'
mean as logits, the readout convention of `export.py`.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from scadeploy.backends.torch_ref import run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.ir.agreement import TOLERANCES, TORCH_REF_F32, Agreement, agreement, compare_logits, float32_spikes
from scadeploy.ir.graph import Encoding, Graph, Op
from scadeploy.ir.nir_conventions import nir_name


def _steps(graph: Graph, x: torch.Tensor) -> list[torch.Tensor]:
    """The input of each step: the frame every step (direct encoding), or the sequence's steps."""
    if graph.input.attrs.encoding is Encoding.DIRECT:
        return [x] * graph.timesteps
    return list(x)


def run_spikingjelly(path: str | Path, graph: Graph, x: torch.Tensor,
                     dt: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`model.nir` through spikingjelly's `import_from_nir`: (logits [N, K], spikes by NIR node name)."""
    try:
        from spikingjelly.activation_based.nir_exchange import import_from_nir
    except ImportError as exc:
        raise UnsupportedError("checking model.nir needs spikingjelly's NIR exchange (nir, nirtorch)",
                               "run make setup, or pip install --no-deps nir==1.0.8 nirtorch==2.6") from exc
    module = import_from_nir(str(path), dt=dt, step_mode="s").eval()
    neurons = {nir_name(n.name) for n in graph.of_op(Op.NEURON)}
    return _stepped(module, neurons, _steps(graph, x), lambda out: out[0])


def run_snntorch(path: str | Path, graph: Graph, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """`model.nir` through snnTorch's `import_from_nir` (its own neuron semantics; see the README).

    NOTE: snnTorch maps NIR's Flatten(start_dim=0) to torch's Flatten(0), which folds the batch
    axis in too, so samples run one at a time.
    """
    try:
        from snntorch.import_nir import import_from_nir
    except ImportError as exc:
        raise UnsupportedError("this comparison needs snntorch", "pip install --no-deps snntorch") from exc
    import nir

    nir_graph = nir.read(str(path))
    neurons = {nir_name(n.name) for n in graph.of_op(Op.NEURON)}
    batch_axis = 0 if graph.input.attrs.encoding is Encoding.DIRECT else 1
    runs = []
    for sample in x.split(1, dim=batch_axis):
        with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints progress while importing
            module = import_from_nir(nir_graph).eval()  # fresh hidden state per sample
        runs.append(_stepped(module, neurons, _steps(graph, sample), lambda out: out[0] if isinstance(out, tuple)
                             else out))
    logits = torch.cat([r[0].reshape(1, -1) for r in runs])
    spikes = {name: torch.cat([r[1][name] for r in runs], dim=1) for name in runs[0][1]}
    return logits, spikes


def _stepped(module: torch.nn.Module, neurons: set[str], steps: list[torch.Tensor],
             spikes_of) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    recorded: dict[str, list[torch.Tensor]] = {name: [] for name in neurons}
    hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: recorded[name].append(spikes_of(out).detach()))
             for name, m in module.named_modules() if name in neurons]
    outputs, state = [], None
    try:
        with torch.no_grad():
            for x_t in steps:
                out, state = module(x_t, state)
                outputs.append(out)
    finally:
        for hook in hooks:
            hook.remove()
    spikes = {name: torch.stack(s) for name, s in recorded.items() if s}
    return torch.stack(outputs).mean(0), spikes


def compare(graph: Graph, x: torch.Tensor, logits: torch.Tensor, spikes: dict[str, torch.Tensor],
            peer: str) -> Agreement:
    """A peer's logits and spikes (by NIR node name) against the float32 torch reference, differences judged
    tie-aware; a layer the peer did not expose is not compared."""
    ref = run_graph(graph, x, record=True)
    got = {name: spikes[nir_name(name)] for name in ref.spikes if nir_name(name) in spikes}
    return agreement(TORCH_REF_F32, peer, "f32", compare_logits(ref.logits, logits), TOLERANCES.runtime,
                     float32_spikes(graph, ref.spikes, got, x))


def spikingjelly_parity(path: str | Path, graph: Graph, x: torch.Tensor, dt: float) -> Agreement:
    """The nir target's parity: spikingjelly's importer against the torch reference."""
    logits, spikes = run_spikingjelly(path, graph, x, dt)
    return compare(graph, x, logits, spikes, "spikingjelly.activation_based.nir_exchange.import_from_nir")
