"""ONNX backend: IR -> `model.onnx` (sequence layout) and `model.step.onnx` (streaming step layout).

The models are built node by node from the IR with `onnx.helper` (not by tracing spikingjelly),
checked with `onnx.checker` and shape inference, and measured against the torch reference on
real inputs with ONNX Runtime under the target's own session options.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import onnx
import torch

from scadeploy.artifact.files import atomic_write_bytes
from scadeploy.artifact.layout import ONNX_SEQUENCE as SEQUENCE_FILE
from scadeploy.artifact.layout import ONNX_STEP as STEP_FILE
from scadeploy.backends.onnx.align import align_channels
from scadeploy.backends.onnx.ops import ONNX_OPS
from scadeploy.backends.onnx.runtime import OrtStepRunner, ort_session
from scadeploy.backends.onnx.sequence import build_sequence_model
from scadeploy.backends.onnx.step import build_step_model, state_specs
from scadeploy.backends.torch_ref import RunResult, run_graph
from scadeploy.errors import UnsupportedError
from scadeploy.ir.agreement import TORCH_REF_F32, Agreement, agreement, compare_logits, float32_spikes
from scadeploy.ir.graph import Graph
from scadeploy.targets import Target
from scadeploy.targets.backend_options import OnnxOptions


def check_lowerable(graph: Graph, backend: str) -> None:
    """One error listing every node the ONNX lowering (also OpenVINO's input) cannot take."""
    problems = ONNX_OPS.refusals(graph)
    if problems:
        raise UnsupportedError(f"the {backend} backend cannot lower: " + "; ".join(problems),
                               "run scadeploy.ir.passes.fold_batchnorm.fold_batchnorm on the graph first")


def check_supported(graph: Graph, target: Target) -> None:
    """Raise one error listing everything this backend cannot lower (before anything is written)."""
    check_lowerable(graph, "ONNX")


def build_models(graph: Graph, options: OnnxOptions) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(sequence model, step model) for a BN-folded graph."""
    aligned = align_channels(graph, options.align_channels)
    return build_sequence_model(aligned, options.opset), build_step_model(aligned, options.opset)


def judge_runtime(graph: Graph, x: torch.Tensor, ref: RunResult, logits: torch.Tensor,
                  folded_spikes: dict[str, torch.Tensor], tolerance: float, runtime: str,
                  arithmetic: str = "f32") -> Agreement:
    """A runtime's logits and folded spikes `[T*N, C (+ alignment), ...]` against the float32 reference run
    `ref` on `x`, differing spikes judged tie-aware."""
    got = {name: folded_spikes[name][:, : expected.shape[2]].reshape(expected.shape)  # alignment comes last
           for name, expected in ref.spikes.items()}
    return agreement(TORCH_REF_F32, runtime, arithmetic, compare_logits(ref.logits, logits), float(tolerance),
                     float32_spikes(graph, ref.spikes, got, x))


@dataclass(frozen=True)
class OnnxParity:
    """ONNX Runtime's parity, and the step layout against the sequence layout (logits after T steps)."""

    runtime: Agreement
    step_vs_sequence_max_diff: float

    def to_dict(self) -> dict:
        return self.runtime.to_dict() | {"step_vs_sequence_max_diff": self.step_vs_sequence_max_diff}


def measure_parity(graph: Graph, options: OnnxOptions, step_model: onnx.ModelProto,
                   samples: torch.Tensor) -> OnnxParity:
    """Logits, classes and every neuron's spikes of the sequence model vs torch_ref; step vs sequence."""
    aligned = align_channels(graph, options.align_channels)
    probe = build_sequence_model(aligned, options.opset, expose_spikes=True)
    session = ort_session(probe.SerializeToString(), options.provider, options.intra_op_num_threads,
                          options.graph_optimization_level, options.allow_spinning)
    x = samples.detach().float().cpu().contiguous()
    outputs = session.run(None, {graph.input.name: x.numpy()})
    names = [o.name for o in session.get_outputs()]
    ref = run_graph(graph, x, record=True)
    logits = torch.from_numpy(outputs[0])
    spikes = {name: torch.from_numpy(value) for name, value in zip(names[1:], outputs[1:], strict=True)}
    step = OrtStepRunner(step_model.SerializeToString(), state_specs(aligned), graph.timesteps,
                         options.provider, options.intra_op_num_threads, options.graph_optimization_level,
                         spinning=options.allow_spinning)
    step.prepare(x.shape[0])
    step_logits = torch.from_numpy(step.run(x.numpy()))
    runtime = judge_runtime(graph, x, ref, logits, spikes, options.parity_tolerance, "onnxruntime")
    return OnnxParity(runtime, compare_logits(logits, step_logits).max_diff)


def export(graph: Graph, target: Target, out_dir: str | Path, samples: torch.Tensor) -> dict:
    """Write `model.onnx` and `model.step.onnx` into `out_dir`; return the manifest section."""
    check_supported(graph, target)
    options: OnnxOptions = target.options
    sequence, step = build_models(graph, options)
    out_dir = Path(out_dir)
    atomic_write_bytes(out_dir / SEQUENCE_FILE, sequence.SerializeToString())
    atomic_write_bytes(out_dir / STEP_FILE, step.SerializeToString())
    parity = measure_parity(graph, options, step, samples)
    return {
        "files": [SEQUENCE_FILE, STEP_FILE],
        "opset": options.opset,
        "options": asdict(options),
        "layouts": {
            SEQUENCE_FILE: {"kind": "sequence", "timesteps": graph.timesteps, "input": _input_doc(graph),
                            "output": "logits [N, classes]"},
            STEP_FILE: {"kind": "step", "input": f"{graph.input.name} [N, {_dims(graph.input.shape)}]",
                        "states": [{"input": s.input_name, "output": s.output_name, "shape": list(s.shape),
                                    "initial": s.initial} for s in state_specs(align_channels(
                                        graph, options.align_channels))],
                        "steps": graph.timesteps},
        },
        "parity": parity.to_dict(),
    }


def _dims(shape: tuple[int, ...]) -> str:
    return ", ".join(str(d) for d in shape)


def _input_doc(graph: Graph) -> str:
    inp = graph.input
    lead = "N" if inp.attrs.encoding.value == "direct" else f"{graph.timesteps}, N"
    return f"{inp.name} [{lead}, {_dims(inp.shape)}]"
