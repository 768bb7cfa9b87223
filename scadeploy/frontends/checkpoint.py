"""The checkpoint format: one `torch.load(weights_only=True)`-safe dict shared by training and deployment.

```
{"format": "scadeploy.checkpoint", "version": 1,
 "arch": {"name": "vgg16", "kwargs": {...}},    # a model of scadeploy.models, rebuilt by name
 "state_dict": {...}, "masks": {conv name: bool[C_out]},   # True = channel kept
 "neuron": {...}, "timesteps": T, "input_shape": [C, H, W], "num_classes": K, "meta": {...}}
```
Loading never unpickles code: a file holding Python objects is refused with a clear error.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from scadeploy.artifact.files import atomic_write_bytes
from scadeploy.errors import CheckpointError
from scadeploy.frontends import checkpoint_schema as schema
from scadeploy.frontends.checkpoint_schema import validate_masks as validate_masks  # part of this module's API
from scadeploy.models import build_model

FORMAT = "scadeploy.checkpoint"
VERSION = 1
REQUIRED_KEYS = ("arch", "state_dict", "masks", "timesteps", "input_shape", "num_classes")
OPTIONAL_KEYS = ("format", "version", "neuron", "meta")
ALL_KEYS = OPTIONAL_KEYS[:2] + REQUIRED_KEYS + OPTIONAL_KEYS[2:]


@dataclass
class Checkpoint:
    """A model spec, its weights and its channel masks (True = kept), plus what deployment needs."""

    arch: dict
    state_dict: dict[str, torch.Tensor]
    masks: dict[str, torch.Tensor]
    timesteps: int
    input_shape: tuple[int, ...]
    num_classes: int
    neuron: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "arch": self.arch,
            "state_dict": self.state_dict,
            "masks": {k: v.to(torch.bool) for k, v in self.masks.items()},
            "neuron": self.neuron,
            "timesteps": int(self.timesteps),
            "input_shape": [int(d) for d in self.input_shape],
            "num_classes": int(self.num_classes),
            "meta": self.meta,
        }

    def build(self) -> nn.Module:
        """The model with these weights, in eval mode (masks are already applied to the weights)."""
        model = build_model(self.arch["name"], **self.arch.get("kwargs", {}))
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise CheckpointError(f"the weights do not fit model '{self.arch['name']}': {first}") from exc
        return model.eval()


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()
    torch.save(ckpt.to_dict(), buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


# Everything torch.load raises on a damaged or hostile file: the zip container, the pickle stream,
# the storages it names, and the bytes of its strings.
READ_ERRORS = (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, KeyError, IndexError,
               TypeError, AttributeError, OverflowError, UnicodeDecodeError, struct.error, MemoryError)


def read_torch_file(path: Path, what: str = "checkpoint") -> object:
    """`torch.load(weights_only=True)` with every failure turned into one CheckpointError line."""
    if not path.is_file():
        raise CheckpointError(f"{what} '{path}' does not exist", "check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"'{path}' holds pickled Python objects, which scadeploy never loads",
            "save a plain dict of tensors, e.g. with scadeploy.frontends.checkpoint.save_checkpoint",
        ) from exc
    except READ_ERRORS as exc:
        raise CheckpointError(f"'{path}' is not a readable torch file (corrupt or truncated: "
                              f"{type(exc).__name__})", "re-create or re-download it") from exc


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and validate a checkpoint; every problem is one CheckpointError or MaskError line.

    Every field is checked (see `checkpoint_schema`), and the model is sized on the meta device,
    before anything is built from the file.
    """
    path = Path(path)
    raw = read_torch_file(path)
    if not isinstance(raw, dict) or not isinstance(raw.get("format"), str) or raw["format"] != FORMAT:
        raise CheckpointError(f"'{path}' is not a scadeploy checkpoint (no format '{FORMAT}')",
                              "a bare state_dict needs its model: use scadeploy.compile() from Python")
    if type(raw.get("version")) is not int or raw["version"] != VERSION:
        raise CheckpointError(f"'{path}' has checkpoint version {schema.show(raw.get('version'))}, "
                              f"this scadeploy reads {VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise CheckpointError(f"'{path}' lacks the fields {missing}")
    unknown = sorted(str(k) for k in set(raw) - set(REQUIRED_KEYS) - set(OPTIONAL_KEYS))
    if unknown:
        raise CheckpointError(f"'{path}' has unknown fields {unknown[:5]}", f"known fields: {', '.join(ALL_KEYS)}")
    state_dict = schema.checked_state_dict(raw["state_dict"])
    ckpt = Checkpoint(
        arch=schema.checked_arch(raw["arch"]),
        state_dict=state_dict,
        masks=schema.checked_masks(raw["masks"], state_dict),
        timesteps=schema.checked_int(raw["timesteps"], "timesteps", 1, schema.MAX_TIMESTEPS),
        input_shape=schema.checked_input_shape(raw["input_shape"]),
        num_classes=schema.checked_int(raw["num_classes"], "num_classes", 1, schema.MAX_CLASSES),
        neuron=schema.checked_neuron(raw.get("neuron", {})),
        meta=schema.checked_meta(raw.get("meta", {})),
    )
    schema.check_footprint(ckpt.arch, ckpt.state_dict, ckpt.input_shape, ckpt.timesteps, ckpt.num_classes)
    return ckpt
