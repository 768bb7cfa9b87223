"""Every way scadeploy can execute a model, behind one small interface: `name`, `prepare(batch)`, `run(x)`.

`run` takes a float32 array of frames `[N, C, H, W]` (direct encoding, shown at every step) or of
a sequence `[T, N, C, H, W]` (for models with a sequence input, e.g. events) and returns logits
`[N, classes]` as a numpy array, so the benchmark harness treats all runners alike:
- `OrtRunner`, `OrtStepRunner` (in `backends/onnx/runtime.py`): ONNX files on ONNX Runtime;
- `TorchRefRunner`: the torch reference interpreter over the IR;
- `SpikingJellyRunner`: the spikingjelly model itself in eager mode (what users run today);
- `DynamoOnnxRunner`: the spikingjelly model through `torch.onnx.export(dynamo=True)` on ONNX Runtime;
- `TorchCompileRunner`: the torch reference interpreter compiled by `torch.compile` (inductor);
- `OpenVinoRunner` (in `backends/openvino/runtime.py`): the sequence-layout ONNX model on OpenVINO.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import torch
from spikingjelly.activation_based import functional
from torch import nn

from scadeploy.backends.onnx.runtime import OrtRunner
from scadeploy.errors import UnsupportedError
from scadeploy.ir.graph import Encoding, Graph


class Runner(Protocol):
    name: str

    def prepare(self, batch_size: int) -> None:
        """Do every one-time cost (sessions, exports, buffers) before timing starts."""

    def run(self, x: np.ndarray) -> np.ndarray:
        """Frames `[N, ...]` -> logits `[N, classes]`."""


def torch_device(device: str) -> torch.device:
    if device == "cuda" and not torch.cuda.is_available():
        raise UnsupportedError("torch sees no CUDA GPU", "run on a machine with an NVIDIA GPU or use device 'cpu'")
    return torch.device(device)


def graph_on(graph: Graph, device: torch.device) -> Graph:
    """The graph with its parameters on `device`, so no run copies weights (the interpreter moves them per call)."""
    if device.type == "cpu":
        return graph
    return graph.with_nodes([n.with_(params={k: p.to(device) for k, p in n.params.items()}) if n.params else n
                             for n in graph.nodes])


class TorchRefRunner:
    """The torch reference interpreter (the oracle) as a runner."""

    def __init__(self, graph: Graph, name: str = "torch-ref", device: str = "cpu") -> None:
        self.name = name
        self.device = torch_device(device)
        self.graph = graph_on(graph, self.device)

    def prepare(self, batch_size: int) -> None:
        pass

    def run(self, x: np.ndarray) -> np.ndarray:
        from scadeploy.backends.torch_ref import run_graph

        return run_graph(self.graph, torch.from_numpy(x).to(self.device)).logits.cpu().numpy()


class FromReset(nn.Module):
    """A multi-step spikingjelly model run from its reset state on a frame (repeated T times) or a sequence."""

    def __init__(self, model: nn.Module, timesteps: int, sequence: bool = False) -> None:
        super().__init__()
        self.model = model
        self.timesteps = timesteps
        self.sequence = sequence

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        functional.reset_net(self.model)
        return self.model(x if self.sequence else x.unsqueeze(0).expand(self.timesteps, *x.shape))


class SpikingJellyRunner:
    """The spikingjelly model in eager mode (torch backend), as users run it before deployment."""

    def __init__(self, model: nn.Module, timesteps: int, name: str = "spikingjelly-eager",
                 device: str = "cpu", sequence: bool = False) -> None:
        self.name = name
        self.device = torch_device(device)
        self.module = FromReset(model, timesteps, sequence).eval().to(self.device)

    def prepare(self, batch_size: int) -> None:
        pass

    def run(self, x: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.module(torch.from_numpy(x).to(self.device)).cpu().numpy()


class DynamoOnnxRunner:
    """The spikingjelly model exported by `torch.onnx.export(dynamo=True)` (dynamic batch), on ONNX Runtime."""

    def __init__(self, model: nn.Module, input_shape: Sequence[int], timesteps: int,
                 name: str = "torch.onnx-dynamo", provider: str = "cpu", threads: int = 0,
                 level: str = "all", spinning: bool = True, sequence: bool = False) -> None:
        self.name = name
        self.module = FromReset(model, timesteps, sequence).eval()
        self.input_shape = (timesteps, 2, *input_shape) if sequence else (2, *input_shape)
        self.batch_dim = 1 if sequence else 0
        self._session_args = (provider, threads, level, spinning)
        self._runner: OrtRunner | None = None

    def export(self) -> bytes:
        """The exported ONNX model (the neurons' state writes are traced away; dynamo warns about them)."""
        example = torch.zeros(*self.input_shape)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(self.module, (example,), dynamo=True, verbose=False,
                                        dynamic_shapes=({self.batch_dim: torch.export.Dim("N")},))
        return program.model_proto.SerializeToString()

    def prepare(self, batch_size: int) -> None:
        if self._runner is None:
            self._runner = OrtRunner(self.export(), self.name, *self._session_args)
        self._runner.prepare(batch_size)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self._runner.run(x)


class GraphModule(nn.Module):
    """The IR executed by the torch reference interpreter, as a module `torch.compile` can trace.

    Dynamo unrolls the interpreter's Python (the node walk, the T neuron steps) into one graph per
    input shape; inductor fuses each neuron's element-wise steps and calls oneDNN for the convolutions.
    """

    def __init__(self, graph: Graph) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from scadeploy.backends.torch_ref import run_graph

        return run_graph(self.graph, x).logits


class TorchCompileRunner:
    """The IR interpreter compiled by inductor, one static-shape graph per batch size.

    Compiling happens in `prepare` (a first call on zeros), so latency never includes it; the
    seconds each batch size took to compile are kept in `compile_seconds`.
    """

    def __init__(self, graph: Graph, name: str = "torch-compile", device: str = "cpu") -> None:
        self.name = name
        self.device = torch_device(device)
        self.graph = graph_on(graph, self.device)
        self.compile_seconds: dict[int, float] = {}
        self._module = torch.compile(GraphModule(self.graph).eval(), dynamic=False)

    def _input(self, batch_size: int) -> torch.Tensor:
        shape = (batch_size, *self.graph.input.shape)
        if self.graph.input.attrs.encoding is not Encoding.DIRECT:
            shape = (self.graph.timesteps, *shape)
        return torch.zeros(shape, device=self.device)

    def prepare(self, batch_size: int) -> None:
        if batch_size not in self.compile_seconds:
            start = time.perf_counter()
            self.run_tensor(self._input(batch_size))
            self.compile_seconds[batch_size] = time.perf_counter() - start

    def run_tensor(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self._module(x)

    def run(self, x: np.ndarray) -> np.ndarray:
        return self.run_tensor(torch.from_numpy(x).to(self.device)).cpu().numpy()
