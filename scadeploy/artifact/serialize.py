"""The compiled graph on disk: structure as JSON, tensors in safetensors; validated on load, no pickle.

```
NAME.graph.json          {"format": "scadeploy.graph", "version": 1, "timesteps": T,
                          "tensors": {"file": "NAME.safetensors", "sha256": ...},
                          "nodes": [{"name", "op", "inputs", "attrs": {field: value}, "shape"}, ...]}
NAME.safetensors         one float32 tensor per node parameter, keyed "<node>::<param>"
```
Loading checks the format and version, every field's type against the op's attribute dataclass,
the tensor file's sha256, and finally `verify`; any failure is one ArtifactError (exit 2), since a
broken file in a compiled directory is the user's data, not a bug. Nothing here runs user code.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import math
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors

from scadeploy.artifact.layout import graph_file, tensors_file
from scadeploy.errors import ArtifactError, GraphError
from scadeploy.ir.graph import Encoding, Graph, NeuronKind, Node, Op
from scadeploy.ir.ops import ATTRS_OF_OP
from scadeploy.ir.verify import verify

FORMAT = "scadeploy.graph"
VERSION = 1
SEPARATOR = "::"
MAX_NODES = 100_000


def _int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"expected an integer, got {value!r}")
    return value


def _float(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value!r}")
    return float(value)


def _bool(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {value!r}")
    return value


def _pair(value: object) -> tuple[int, int]:
    if not isinstance(value, list) or len(value) != 2:
        raise ValueError(f"expected a pair of integers, got {value!r}")
    return (_int(value[0]), _int(value[1]))


def _optional_float(value: object) -> float | None:
    return None if value is None else _float(value)


def _enum(cls: type[enum.Enum]) -> Callable[[object], enum.Enum]:
    def decode(value: object) -> enum.Enum:
        try:
            return cls(value)
        except ValueError as exc:
            raise ValueError(f"expected one of {[e.value for e in cls]}, got {value!r}") from exc

    return decode


# Attribute field type (as annotated in ir/graph.py) -> JSON decoder. A test checks every field has one.
DECODERS: dict[str, Callable[[object], object]] = {
    "int": _int,
    "float": _float,
    "bool": _bool,
    "Pair": _pair,
    "float | None": _optional_float,
    "Encoding": _enum(Encoding),
    "NeuronKind": _enum(NeuronKind),
}


def _encode(value: object) -> object:
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def graph_to_json(graph: Graph, tensor_file: str, tensor_sha256: str) -> dict:
    nodes = [{"name": n.name, "op": n.op.value, "inputs": list(n.inputs),
              "attrs": {f.name: _encode(getattr(n.attrs, f.name)) for f in dataclasses.fields(n.attrs)},
              "shape": list(n.shape)} for n in graph.nodes]
    return {"format": FORMAT, "version": VERSION, "timesteps": graph.timesteps,
            "tensors": {"file": tensor_file, "sha256": tensor_sha256}, "nodes": nodes}


def save_graph(graph: Graph, directory: str | Path, name: str) -> list[str]:
    """Write `NAME.graph.json` and `NAME.safetensors` into `directory`; returns the file names."""
    directory = Path(directory)
    tensors = {f"{n.name}{SEPARATOR}{k}": p.detach().to(torch.float32).contiguous()
               for n in graph.nodes for k, p in n.params.items()}
    blob = save_tensors(tensors)
    tensor_file, json_file = tensors_file(name), graph_file(name)
    (directory / tensor_file).write_bytes(blob)
    document = graph_to_json(graph, tensor_file, hashlib.sha256(blob).hexdigest())
    (directory / json_file).write_text(json.dumps(document, indent=1) + "\n")
    return [json_file, tensor_file]


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ArtifactError(f"'{path}' does not exist", "re-run scadeploy compile for this directory")
    try:
        document = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"'{path}' is not valid JSON ({exc})", "re-run scadeploy compile") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ArtifactError(f"'{path}' is not a scadeploy graph (no format '{FORMAT}')")
    if document.get("version") != VERSION:
        raise ArtifactError(f"'{path}' has graph format version {document.get('version')!r}, this scadeploy "
                            f"reads {VERSION}", "re-run scadeploy compile with this version")
    return document


def _read_tensors(path: Path, spec: object) -> dict[str, torch.Tensor]:
    if not isinstance(spec, dict) or not isinstance(spec.get("file"), str) or not isinstance(spec.get("sha256"), str):
        raise ArtifactError(f"'{path}': 'tensors' must name a file and its sha256")
    tensor_path = path.parent / Path(spec["file"]).name
    if not tensor_path.is_file():
        raise ArtifactError(f"'{tensor_path}' (the tensors of '{path.name}') does not exist",
                            "re-run scadeploy compile for this directory")
    blob = tensor_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != spec["sha256"]:
        raise ArtifactError(f"'{tensor_path}' changed after compile (sha256 differs from '{path.name}')",
                            "re-run scadeploy compile for this directory")
    try:
        return load_tensors(blob)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise ArtifactError(f"'{tensor_path}' is not a readable safetensors file ({exc})") from exc


def _node(entry: object, tensors: dict[str, torch.Tensor]) -> Node:
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise ValueError("a node must be an object with a string 'name'")
    name = entry["name"]
    op = _enum(Op)(entry.get("op"))
    attrs_cls = ATTRS_OF_OP[op]
    raw = entry.get("attrs")
    fields = {f.name: f for f in dataclasses.fields(attrs_cls)}
    if not isinstance(raw, dict) or set(raw) != set(fields):
        raise ValueError(f"node '{name}': attrs must have exactly the fields {sorted(fields)}")
    attrs = attrs_cls(**{k: DECODERS[str(f.type)](raw[k]) for k, f in fields.items()})
    inputs, shape = entry.get("inputs"), entry.get("shape")
    if not isinstance(inputs, list) or not all(isinstance(i, str) for i in inputs):
        raise ValueError(f"node '{name}': inputs must be a list of node names")
    if not isinstance(shape, list) or not shape:
        raise ValueError(f"node '{name}': shape must be a non-empty list")
    prefix = f"{name}{SEPARATOR}"
    params = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    for key, value in params.items():
        if value.dtype != torch.float32 or not bool(torch.isfinite(value).all()):
            raise ValueError(f"node '{name}': parameter '{key}' must be finite float32")
    return Node(name, op, tuple(inputs), attrs, tuple(_int(d) for d in shape), params)


def load_graph(path: str | Path) -> Graph:
    """Read and validate `NAME.graph.json` (and its tensors); every problem is one ArtifactError."""
    path = Path(path)
    document = _read_json(path)
    tensors = _read_tensors(path, document.get("tensors"))
    entries = document.get("nodes")
    if not isinstance(entries, list) or not 0 < len(entries) <= MAX_NODES:
        raise ArtifactError(f"'{path}': 'nodes' must be a list of 1 to {MAX_NODES:,} nodes")
    try:
        timesteps = _int(document.get("timesteps"))
        nodes = [_node(entry, tensors) for entry in entries]
    except (ValueError, TypeError) as exc:
        raise ArtifactError(f"'{path}' is malformed: {exc}", "re-run scadeploy compile") from exc
    used = {f"{n.name}{SEPARATOR}{k}" for n in nodes for k in n.params}
    if used != set(tensors):
        raise ArtifactError(f"'{path}': tensors {sorted(set(tensors) - used)[:3]} belong to no node")
    try:
        return verify(Graph(tuple(nodes), timesteps))
    except GraphError as exc:
        raise ArtifactError(f"'{path}' is not a valid graph: {exc.message}", "re-run scadeploy compile") from exc
