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
from scadeploy.ir.graph import Encoding, Graph, Op
from scadeploy.ir.nir_conventions import nir_name
from scadeploy.ir.rounding import judge_float32_flips


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


def compare(graph: Graph, x: torch.Tensor, logits: torch.Tensor, spikes: dict[str, torch.Tensor]) -> dict:
    """Spike mismatches per neuron layer and logit differences against the torch reference (float32)."""
    ref = run_graph(graph, x, record=True)
    compared = mismatches = 0
    got = {}
    for name, expected in ref.spikes.items():
        peer = spikes.get(nir_name(name))
        if peer is None or peer.shape != expected.shape:
            continue
        got[name] = peer
        compared += expected.numel()
        mismatches += int((peer != expected).sum())
    # Flips are judged tie-aware only when every layer was read back (roots need all upstream spikes).
    judged = judge_float32_flips(graph, ref.spikes, got, {}, x) if mismatches and len(got) == len(ref.spikes) else None
    return {"samples": int(ref.logits.shape[0]), "neuron_layers_compared": len(got),
            "neuron_layers": len(ref.spikes), "spikes_compared": compared, "spike_mismatches": mismatches,
            "spike_flip_roots": judged.roots if judged else mismatches, "spike_ties": judged.ties if judged else 0,
            "max_logit_diff": float((logits - ref.logits).abs().max()),
            "class_agreement": float((logits.argmax(1) == ref.logits.argmax(1)).float().mean())}


def spikingjelly_parity(path: str | Path, graph: Graph, x: torch.Tensor, dt: float) -> dict:
    """The nir target's parity: spikingjelly's importer against the torch reference."""
    logits, spikes = run_spikingjelly(path, graph, x, dt)
    return {"peer": "spikingjelly.activation_based.nir_exchange.import_from_nir"} | compare(graph, x, logits, spikes)
