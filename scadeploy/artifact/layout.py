"""Every file of a compiled directory DIR, named once, for the code that writes it and the code that reads it.

```
DIR/manifest.json                  the table of contents (`artifact/manifest.py`)
DIR/{stripped,masked}.graph.json   the graphs (`artifact/serialize.py`), tensors in NAME.safetensors
DIR/stripped.pt                    the stripped checkpoint (built-in architectures only)
DIR/inputs.npz                     the parity inputs, when they were given from Python
DIR/model.onnx, model.step.onnx    onnx target: sequence and one-step models
DIR/model.xml, model.bin, openvino.config.json   openvino target
DIR/model.net                      lava target
DIR/model.nir                      nir target
DIR/benchmark.png                  written by `scadeploy benchmark`
```
The manifest records each graph's and each target's files by name; readers find them through it
(`Layout.file`), writers name them from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"
STRIPPED_GRAPH = "stripped"  # BN folded: what the backends consumed
MASKED_GRAPH = "masked"  # as traced from the model
GRAPHS = (STRIPPED_GRAPH, MASKED_GRAPH)  # the graph keys of the manifest, also the graphs' file stems
GRAPH_SUFFIX = ".graph.json"
TENSORS_SUFFIX = ".safetensors"
STRIPPED_CHECKPOINT = "stripped.pt"
INPUTS = "inputs.npz"
BENCHMARK_PLOT = "benchmark.png"
ONNX_SEQUENCE = "model.onnx"
ONNX_STEP = "model.step.onnx"
OPENVINO_MODEL = "model.xml"
OPENVINO_WEIGHTS = "model.bin"
OPENVINO_CONFIG = "openvino.config.json"
LAVA_NET = "model.net"
NIR_MODEL = "model.nir"


def graph_file(stem: str) -> str:
    """The structure file of a serialized graph."""
    return f"{stem}{GRAPH_SUFFIX}"


def tensors_file(stem: str) -> str:
    """The tensor file of a serialized graph."""
    return f"{stem}{TENSORS_SUFFIX}"


def is_file_name(name: object) -> bool:
    """A plain file name inside DIR, the only kind the manifest may record (no folders, no '..')."""
    return isinstance(name, str) and bool(name) and Path(name).name == name and name not in (".", "..")


@dataclass(frozen=True)
class Layout:
    """The paths of one compiled directory."""

    root: Path

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST

    @property
    def stripped_checkpoint(self) -> Path:
        return self.root / STRIPPED_CHECKPOINT

    @property
    def inputs(self) -> Path:
        return self.root / INPUTS

    @property
    def benchmark_plot(self) -> Path:
        return self.root / BENCHMARK_PLOT

    def file(self, name: str) -> Path:
        """A file the manifest names; the manifest checked on read that it is a plain name (`is_file_name`)."""
        return self.root / Path(name).name
