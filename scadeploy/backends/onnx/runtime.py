"""ONNX Runtime sessions and runners for scadeploy's ONNX files.

- `ort_session`: one session with pinned threads and an explicit provider (never a silent fallback);
- `OrtRunner`: the sequence-layout model, one `session.run` per batch;
- `OrtStepRunner`: the streaming step layout, T calls with I/O binding keeping the state on the device.
Both runners follow `scadeploy.measure.runners.Runner` (`name`, `prepare(batch)`, `run(x)`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
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
        _load_cuda_libraries()
        # NOTE: TF32 (on by default on Ampere and later) rounds float32 conv and matmul inputs to 10
        # mantissa bits, which flips spikes; parity against the float32 reference needs it off.
        options = {"cudnn_conv_algo_search": "HEURISTIC", "use_tf32": "0"}
        providers = [(PROVIDERS["cuda"], options), PROVIDERS["cpu"]]
    data = model if isinstance(model, bytes) else str(model)
    session = ort.InferenceSession(data, so, providers=providers)
    # NOTE: a CUDA provider whose libraries fail to load is dropped with a log line, not an error.
    if session.get_providers()[0] != PROVIDERS[provider]:
        raise UnsupportedError(f"ONNX Runtime could not start {PROVIDERS[provider]} (it fell back to "
                               f"{session.get_providers()[0]})",
                               "onnxruntime-gpu needs the CUDA and cuDNN libraries of its CUDA major version")
    return session


def _load_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries of the pip packages torch brings, where onnxruntime-gpu can."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:
        try:
            preload()
        except (OSError, RuntimeError, ImportError):  # best effort: the provider check after it says what failed
            pass



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
    """The step-layout ONNX model, one `run_with_iobinding` per time step, the state kept by ONNX Runtime.

    The states live in two sets of buffers on the provider's device, preallocated per batch size,
    that swap roles every step (one is read, the other written); two I/O bindings hold the two
    directions, so a step only binds its frame, runs, and copies the logits out: what a streaming
    deployment pays per event window. `run` resets and steps T times; `step_seconds` holds the
    duration of every step of the last `run` (frame in, step, logits out).
    """

    def __init__(self, model: bytes | str | Path, states: Sequence, timesteps: int, provider: str = "cpu",
                 threads: int = 0, level: str = "all", name: str = "onnxruntime-step",
                 spinning: bool = True) -> None:
        self.name = name
        self.states = list(states)  # onnx_step.StateSpec
        self.timesteps = timesteps
        self.step_seconds: list[float] = []
        self._args = (model, provider, threads, level, spinning)
        self._device = "cuda" if provider == "cuda" else "cpu"
        self._session: ort.InferenceSession | None = None
        self._batch: int | None = None

    def _open(self) -> None:
        self._session = ort_session(*self._args)
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        self._input = self._session.get_inputs()[0].name
        self._frame_rank = len(inputs[self._input])
        self._logits_name = self._session.get_outputs()[0].name
        self._classes = list(self._session.get_outputs()[0].shape[1:])
        missing = [s.input_name for s in self.states if s.input_name not in inputs]
        if missing:
            raise UnsupportedError(f"the step model has no state input {', '.join(missing)}",
                                   "give the states of the graph the step model was built from (state_specs)")
        # NOTE: the file is the authority on state shapes (channel alignment may have padded them).
        self.states = [replace(s, shape=tuple(inputs[s.input_name][1:])) for s in self.states]

    def prepare(self, batch_size: int) -> None:
        """Open the session once; per batch size, allocate the state buffers and bind them."""
        if self._session is None:
            self._open()
        if batch_size == self._batch:
            return
        self._batch = batch_size
        self._initial = [s.initial_value(batch_size) for s in self.states]
        buffers = [[self._empty([batch_size, *s.shape]) for s in self.states] for _ in range(2)]
        self._logits = self._empty([batch_size, *self._classes])
        self._bindings = []
        for reads, writes in ((buffers[0], buffers[1]), (buffers[1], buffers[0])):
            binding = self._session.io_binding()
            for spec, value_in, value_out in zip(self.states, reads, writes, strict=True):
                binding.bind_ortvalue_input(spec.input_name, value_in)
                binding.bind_ortvalue_output(spec.output_name, value_out)
            binding.bind_ortvalue_output(self._logits_name, self._logits)
            self._bindings.append(binding)
        self._first = buffers[0]
        self._frame = self._empty([batch_size, *self._session.get_inputs()[0].shape[1:]])

    def _empty(self, shape: list[int]) -> ort.OrtValue:
        return ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, self._device, 0)

    def reset(self, batch_size: int) -> None:
        """Start a new sequence: every state back to its initial value."""
        self.prepare(batch_size)
        for value, initial in zip(self._first, self._initial, strict=True):
            value.update_inplace(initial)
        self._t = 0
        self.step_seconds = []

    def step(self, frame: np.ndarray | None) -> np.ndarray:
        """One time step on `frame` `[N, ...]` (None: the frame of the previous step again) -> logits so far."""
        start = time.perf_counter()
        binding = self._bindings[self._t % 2]
        if frame is not None:
            self._frame.update_inplace(np.ascontiguousarray(frame, dtype=np.float32))
        binding.bind_ortvalue_input(self._input, self._frame)
        self._session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        logits = self._logits.numpy().copy()
        self._t += 1
        self.step_seconds.append(time.perf_counter() - start)
        return logits

    def run(self, x: np.ndarray) -> np.ndarray:
        """`x` is one frame per sample `[N, ...]` (shown at every step) or a sequence `[T, N, ...]`."""
        sequence = x.ndim == self._frame_rank + 1
        self.reset(x.shape[1] if sequence else x.shape[0])
        for t in range(self.timesteps):
            logits = self.step(x[t] if sequence else (x if t == 0 else None))
        return logits
