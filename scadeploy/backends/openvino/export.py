"""OpenVINO target: IR -> OpenVINO IR (`model.xml` + `model.bin`) and its CPU settings, parity measured on OpenVINO.

The network is the ONNX backend's sequence layout (same channel alignment, same neuron lowering),
converted once by OpenVINO and saved in float32 (no fp16 compression), so a deployment loads it
without the ONNX frontend. `openvino.config.json` holds the CPU plugin settings the parity was
measured under; pass them to `core.compile_model` unchanged to get the same numbers.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import torch

from scadeploy.artifact.files import atomic_write_bytes
from scadeploy.artifact.layout import OPENVINO_CONFIG as CONFIG_FILE
from scadeploy.artifact.layout import OPENVINO_MODEL as MODEL_FILE
from scadeploy.artifact.layout import OPENVINO_WEIGHTS as WEIGHTS_FILE
from scadeploy.backends.onnx.align import align_channels
from scadeploy.backends.onnx.export import check_lowerable, judge_runtime
from scadeploy.backends.onnx.ops import ONNX_OPS
from scadeploy.backends.onnx.sequence import build_sequence_model
from scadeploy.backends.openvino.runtime import compile_openvino, effective_precision, import_openvino, openvino_config
from scadeploy.backends.torch_ref import run_graph
from scadeploy.ir.agreement import Agreement
from scadeploy.ir.graph import Graph, Op
from scadeploy.ir.ops import BackendOps
from scadeploy.targets import Target
from scadeploy.targets.backend_options import OpenVinoOptions

OPENVINO_OPS = BackendOps("openvino", dict(ONNX_OPS.table))
"""OpenVINO reads scadeploy's ONNX sequence model, so it lowers exactly what the ONNX backend lowers."""


def check_supported(graph: Graph, target: Target) -> None:
    """Raise one error listing everything this backend cannot lower (before anything is written)."""
    import_openvino()
    check_lowerable(graph, "OpenVINO")


def measure_parity(graph: Graph, options: OpenVinoOptions, model_xml: Path, samples: torch.Tensor) -> Agreement:
    """Logits of the saved IR and every neuron's spikes (from a probe with spike outputs) vs torch_ref, in
    the precision OpenVINO really ran in."""
    config = openvino_config(options.inference_num_threads, options.precision, options.performance_hint)
    x = samples.detach().float().cpu().contiguous()
    ref = run_graph(graph, x, record=True)
    compiled = compile_openvino(model_xml, config)
    logits = torch.from_numpy(compiled.create_infer_request().infer({0: x.numpy()})[0].copy())
    probe = build_sequence_model(align_channels(graph, options.align_channels), options.opset, expose_spikes=True)
    outputs = compile_openvino(probe.SerializeToString(), config).create_infer_request().infer({0: x.numpy()})
    spikes = {n.name: torch.from_numpy(outputs[n.name].copy()) for n in graph.of_op(Op.NEURON)}
    return judge_runtime(graph, x, ref, logits, spikes, options.parity_tolerance, "openvino",
                         effective_precision(compiled))


def save_ir(onnx_bytes: bytes, out_dir: Path) -> None:
    """Convert the ONNX model and write `model.xml` + `model.bin` in float32, each replaced atomically."""
    ov = import_openvino()
    model = ov.Core().read_model(onnx_bytes)
    scratch = Path(tempfile.mkdtemp(dir=out_dir, prefix=".openvino."))
    try:
        ov.save_model(model, str(scratch / MODEL_FILE), compress_to_fp16=False)
        for name in (WEIGHTS_FILE, MODEL_FILE):  # the weights first: an .xml never points at missing weights
            os.replace(scratch / name, out_dir / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def export(graph: Graph, target: Target, out_dir: str | Path, samples: torch.Tensor) -> dict:
    """Write `model.xml`, `model.bin` and `openvino.config.json` into `out_dir`; return the manifest section."""
    check_supported(graph, target)
    options: OpenVinoOptions = target.options
    out_dir = Path(out_dir)
    sequence = build_sequence_model(align_channels(graph, options.align_channels), options.opset)
    save_ir(sequence.SerializeToString(), out_dir)
    config = openvino_config(options.inference_num_threads, options.precision, options.performance_hint)
    atomic_write_bytes(out_dir / CONFIG_FILE, (json.dumps({"device": "CPU", "config": config}, indent=2) + "\n")
                       .encode())
    parity = measure_parity(graph, options, out_dir / MODEL_FILE, samples)
    return {
        "files": [MODEL_FILE, WEIGHTS_FILE, CONFIG_FILE],
        "openvino": import_openvino().__version__,
        "options": asdict(options),
        "config": config,
        "layout": {"kind": "sequence", "timesteps": graph.timesteps, "output": "logits [N, classes]"},
        "parity": parity.to_dict(),
    }
