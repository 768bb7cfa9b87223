"""ONNX Runtime sessions and runners for scadeploy's ONNX files.

- `ort_session`: one session with pinned threads and an explicit provider (never a silent fallback);
- `OrtRunner`: the sequence-layout model, one `session.run` per batch;
- `OrtStepRunner`: the streaming step layout, T calls with I/O binding keeping the state on the device.
Both runners follow `scadeploy.measure.runners.Runner` (`name`, `prepare(batch)`, `run(x)`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort

from scadeploy.errors import UnsupportedError

PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def ort_session(model: bytes | str | Path, provider: str = "cpu", threads: int = 0,
                level: str = "all", spinning: bool = True) -> ort.InferenceSession:
    """An ONNX Runtime session with pinned threads and an explicit provider (never a silent fallback).

    `spinning=False` makes idle intra-op threads sleep instead of busy-waiting between operators.
    NOTE: on a CPU shared with other processes, spinning threads burn the time slices the working
    thread needs; a model of many short operators (a stripped SNN) then slows down the most.
    """
    if provider not in PROVIDERS:
        raise UnsupportedError(f"unknown ONNX Runtime provider '{provider}'", f"use one of {', '.join(PROVIDERS)}")
    if PROVIDERS[provider] not in ort.get_available_providers():
        raise UnsupportedError(f"ONNX Runtime has no {PROVIDERS[provider]} here",
                               "install onnxruntime-gpu (pip install 'scadeploy[gpu]') on a machine with an "
                               "NVIDIA GPU, or use the onnx-cpu target")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.graph_optimization_level = OPT_LEVELS[level]
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    providers: list = [PROVIDERS[provider]]
    if provider == "cuda":
        providers = [(PROVIDERS["cuda"], {"cudnn_conv_algo_search": "HEURISTIC"}), PROVIDERS["cpu"]]
    data = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(data, so, providers=providers)



class OrtRunner:
    """The sequence-layout ONNX model: one `session.run` per batch."""

    def __init__(self, model: bytes | str | Path, name: str = "onnxruntime", provider: str = "cpu",
                 threads: int = 0, level: str = "all", spinning: bool = True) -> None:
        self.name = name
        self._args = (model, provider, threads, level, spinning)
        self._session: ort.InferenceSession | None = None

    def prepare(self, batch_size: int) -> None:
        if self._session is None:
            self._session = ort_session(*self._args)
            self._input = self._session.get_inputs()[0].name

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._session.run(None, {self._input: x})[0]


class OrtStepRunner:
    """The step-layout ONNX model run T times; states stay on the device between steps (I/O binding)."""

    def __init__(self, model: bytes | str | Path, states: Sequence, timesteps: int, provider: str = "cpu",
                 threads: int = 0, level: str = "all", name: str = "onnxruntime-step",
                 spinning: bool = True) -> None:
        self.name = name
        self.states = list(states)  # onnx_step.StateSpec
        self.timesteps = timesteps
        self._args = (model, provider, threads, level, spinning)
        self._device = "cuda" if provider == "cuda" else "cpu"
        self._session: ort.InferenceSession | None = None

    def prepare(self, batch_size: int) -> None:
        if self._session is None:
            self._session = ort_session(*self._args)
            self._input = self._session.get_inputs()[0].name
            self._frame_rank = len(self._session.get_inputs()[0].shape)
            self._logits = self._session.get_outputs()[0].name
        self._batch = batch_size
        self._initial = [ort.OrtValue.ortvalue_from_numpy(s.initial_value(batch_size), self._device, 0)
                         for s in self.states]

    def _device_value(self, array: np.ndarray) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(array), self._device, 0)

    def run(self, x: np.ndarray) -> np.ndarray:
        """`x` is one frame per sample `[N, ...]` (shown at every step) or a sequence `[T, N, ...]`."""
        sequence = x.ndim == self._frame_rank + 1
        if (x.shape[1] if sequence else x.shape[0]) != self._batch:
            self.prepare(x.shape[1] if sequence else x.shape[0])
        frame = None if sequence else self._device_value(x)
        binding = self._session.io_binding()
        states = self._initial
        for t in range(self.timesteps):
            binding.bind_ortvalue_input(self._input, self._device_value(x[t]) if sequence else frame)
            for spec, value in zip(self.states, states, strict=True):
                binding.bind_ortvalue_input(spec.input_name, value)
            binding.bind_output(self._logits, self._device)
            for spec in self.states:
                binding.bind_output(spec.output_name, self._device)
            self._session.run_with_iobinding(binding)
            outputs = binding.get_outputs()
            states = outputs[1:]
            binding.clear_binding_inputs()
            binding.clear_binding_outputs()
        return outputs[0].numpy()
