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

import hashlib
import io
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from scadeploy.errors import CheckpointError, MaskError
from scadeploy.models import build_model

FORMAT = "scadeploy.checkpoint"
VERSION = 1
REQUIRED_KEYS = ("arch", "state_dict", "masks", "timesteps", "input_shape", "num_classes")


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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file in the same directory and rename, so readers never see half a file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(ckpt: Checkpoint, path: str | os.PathLike) -> Path:
    buffer = io.BytesIO()
    torch.save(ckpt.to_dict(), buffer)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read(path: Path) -> object:
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist", "check the path")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"'{path}' holds pickled Python objects, which scadeploy never loads",
            "save a plain dict of tensors, e.g. with scadeploy.checkpoint.save_checkpoint",
        ) from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise CheckpointError(f"'{path}' is not a readable torch file (corrupt or truncated)",
                              "re-create or re-download it") from exc


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Load and validate a checkpoint; every problem is one CheckpointError or MaskError line."""
    path = Path(path)
    raw = _read(path)
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a scadeploy checkpoint (no format '{FORMAT}')",
                              "a bare state_dict needs its model: use scadeploy.compile() from Python")
    if raw.get("version") != VERSION:
        raise CheckpointError(f"'{path}' has checkpoint version {raw.get('version')}, this scadeploy reads {VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in raw]
    if missing:
        raise CheckpointError(f"'{path}' lacks the fields {missing}")
    arch = raw["arch"]
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise CheckpointError(f"'{path}' has a malformed 'arch' (needs a model name)")
    ckpt = Checkpoint(
        arch=arch,
        state_dict=dict(raw["state_dict"]),
        masks=dict(raw["masks"]),
        timesteps=int(raw["timesteps"]),
        input_shape=tuple(int(d) for d in raw["input_shape"]),
        num_classes=int(raw["num_classes"]),
        neuron=dict(raw.get("neuron", {})),
        meta=dict(raw.get("meta", {})),
    )
    validate_masks(ckpt.masks, ckpt.state_dict)
    return ckpt


def validate_masks(masks: dict[str, torch.Tensor], state_dict: dict[str, torch.Tensor]) -> None:
    """Each mask names a conv/linear layer and is a 1-D bool tensor over its output channels."""
    for name, mask in masks.items():
        weight = state_dict.get(f"{name}.weight")
        if weight is None:
            raise MaskError(f"mask '{name}' names no layer with weights",
                            "masks are keyed by the conv module's name, e.g. 'features.conv1'")
        if not isinstance(mask, torch.Tensor) or mask.dim() != 1 or mask.numel() != weight.shape[0]:
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise MaskError(f"mask '{name}' has shape {got}, expected ({weight.shape[0]},) for its "
                            f"{weight.shape[0]} output channels")
        if mask.dtype != torch.bool:
            raise MaskError(f"mask '{name}' has dtype {mask.dtype}, expected torch.bool")
        if not bool(mask.any()):
            raise MaskError(f"mask '{name}' removes every channel of the layer", "keep at least one channel")
