"""OpenVINO compiled models and a runner for scadeploy's sequence-layout model (`scadeploy[openvino]`).

OpenVINO is optional: `import_openvino` is the one place it is imported, and it turns a missing
package into one UnsupportedError (exit 2) naming the extra to install.
NOTE: on CPUs with bf16 units OpenVINO's default inference precision is bf16, which flips spikes
and moves logits by about 3e-2; every compile here pins the precision explicitly (f32 by default).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from scadeploy.errors import UnsupportedError
from scadeploy.targets.backend_options import OpenVinoOptions
from scadeploy.targets.options import choices_of

PRECISIONS = choices_of(OpenVinoOptions, "precision")
PERFORMANCE_HINTS = choices_of(OpenVinoOptions, "performance_hint")


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def import_openvino() -> ModuleType:
    """The `openvino` package, or one clear error saying how to install it."""
    try:
        import openvino
    except ImportError as exc:
        raise UnsupportedError("OpenVINO is not installed",
                               "pip install 'scadeploy[openvino]' (make setup installs it)") from exc
    return openvino


def openvino_config(threads: int = 0, precision: str = "f32", hint: str = "LATENCY") -> dict[str, Any]:
    """The CPU plugin settings; threads=0 leaves OpenVINO's own choice (one per physical core)."""
    if precision not in PRECISIONS:
        raise UnsupportedError(f"unknown OpenVINO precision '{precision}'", f"use one of {', '.join(PRECISIONS)}")
    if hint not in PERFORMANCE_HINTS:
        raise UnsupportedError(f"unknown OpenVINO performance hint '{hint}'",
                               f"use one of {', '.join(PERFORMANCE_HINTS)}")
    config: dict[str, Any] = {"PERFORMANCE_HINT": hint, "INFERENCE_PRECISION_HINT": precision}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


def compile_openvino(model: bytes | str | Path, config: dict[str, Any]) -> Any:
    """An OpenVINO CompiledModel for the CPU from ONNX bytes, an .onnx file or an OpenVINO IR .xml file."""
    ov = import_openvino()
    core = ov.Core()
    return core.compile_model(core.read_model(model if isinstance(model, bytes) else str(model)), "CPU", config)


def effective_precision(compiled: Any) -> str:
    """The precision OpenVINO really runs in ('f32' also when bf16 was asked on a CPU without bf16 units)."""
    return compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()


class OpenVinoRunner:
    """The sequence-layout model on OpenVINO's CPU plugin: one synchronous infer request per batch."""

    def __init__(self, model: bytes | str | Path, name: str = "openvino", threads: int = 0,
                 precision: str = "f32", hint: str = "LATENCY") -> None:
        self.name = name
        self.model = model
        self.config = openvino_config(threads, precision, hint)
        import_openvino()  # fail at construction, before any timing starts
        self._request: Any = None
        self.precision: str | None = None  # what OpenVINO runs in, known after prepare()

    def prepare(self, batch_size: int) -> None:
        if self._request is None:
            compiled = compile_openvino(self.model, self.config)
            self.precision = effective_precision(compiled)
            self._request = compiled.create_infer_request()

    def run(self, x: np.ndarray) -> np.ndarray:
        # NOTE: the result tensor is the request's own buffer, overwritten by the next call: copy it.
        return np.array(self._request.infer({0: np.ascontiguousarray(x)})[0])
