"""Inputs for compile, benchmark and simulate: a built-in dataset by name, or the user's own file.

Accepted files (`--data FILE`), validated before use:
- `.npz` (read with allow_pickle=False) or a `.pt` dict read with `torch.load(weights_only=True)`,
  holding `x` and optionally `y` (integer class labels, one per sample);
- `x` is either frames `[N, C, H, W]` (direct encoding: the frame is shown at every time step) or a
  sequence `[T, N, C, H, W]`, time first (spikes or analog values per step, e.g. event-camera
  input). `[N, T, C, H, W]` is refused: transpose it so time comes first;
- or event recordings as tonic gives them: a `.npy` holding one structured array with fields x, y, t, p
  (one sample), or a `.npz` holding one such array per sample (in the order saved) and optionally
  `y`. They are binned into T frames of the sensor (`sensor_size` W, H, P) as tonic's
  `ToFrame(n_time_bins=T)` does (`events.py`), giving a sequence `[T, N, P, H, W]`.
Built-in names: `digits`, `mnist5k` and `cifar10`/`cifar100` (test split; CIFAR needs `data_dir`), and
`digits-events` (the digits test split as ON/OFF events, see `events.py`).
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scadeploy.data.datasets import DATASETS, load_dataset
from scadeploy.data.events import BINNING, frames_to_events, is_recording, recordings_to_sequence
from scadeploy.errors import DataError

FRAMES = "frames"
SEQUENCE = "sequence"
EVENT_DATASETS = ("digits-events",)
MAX_ELEMENTS = 1 << 31  # refuse inputs above 8 GiB of float32 before converting them


@dataclass(frozen=True)
class Samples:
    """Inputs `x` in one of two layouts and optional labels `y` [N]; `source` says where they came from."""

    x: torch.Tensor  # FRAMES: [N, *shape]; SEQUENCE: [T, N, *shape]
    y: torch.Tensor | None
    layout: str
    source: dict

    @property
    def count(self) -> int:
        return int(self.x.shape[0] if self.layout == FRAMES else self.x.shape[1])

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return tuple(self.x.shape[1:] if self.layout == FRAMES else self.x.shape[2:])

    @property
    def batch_axis(self) -> int:
        return 0 if self.layout == FRAMES else 1

    def take(self, count: int) -> Samples:
        """The first `count` samples."""
        x = self.x[:count] if self.layout == FRAMES else self.x[:, :count]
        return Samples(x, None if self.y is None else self.y[:count], self.layout, self.source)

    def cycle(self, count: int) -> torch.Tensor:
        """Exactly `count` inputs, repeating the samples when there are fewer (for fixed batch sizes)."""
        index = torch.arange(count) % self.count
        return self.x.index_select(self.batch_axis, index)

    @property
    def name(self) -> str:
        """The built-in dataset's name, the file's name, or 'random'."""
        if "name" in self.source:
            return str(self.source["name"])
        return Path(self.source["path"]).name if "path" in self.source else str(self.source.get("kind", "inputs"))

    def describe(self) -> str:
        return str(self.source.get("label", self.name))


def builtin_names() -> tuple[str, ...]:
    return (*DATASETS, *EVENT_DATASETS)


def load_samples(spec: str, data_dir: str | Path | None = None, timesteps: int | None = None,
                 sensor_size: tuple[int, int, int] | None = None) -> Samples:
    """Samples from a built-in dataset name (its test split) or a `.npz` / `.npy` / `.pt` file.

    `sensor_size` (W, H, P) and `timesteps` bin event recordings; other data ignores `sensor_size`.
    """
    if spec in DATASETS:
        images, labels = load_dataset(spec, train=False, data_dir=data_dir).tensors[:2]
        source = {"kind": "builtin", "name": spec, "data_dir": str(data_dir) if data_dir else None,
                  "label": f"{spec} test split"}
        return Samples(images.float(), labels.long(), FRAMES, source)
    if spec in EVENT_DATASETS:
        steps = timesteps or 4
        images, labels = load_dataset("digits", train=False).tensors[:2]
        source = {"kind": "builtin", "name": spec, "timesteps": steps, "label": f"{spec} test split (T={steps})"}
        return Samples(frames_to_events(images, steps), labels.long(), SEQUENCE, source)
    path = Path(spec)
    if not path.is_file():
        raise DataError(f"data '{spec}' is neither a built-in dataset nor an existing file",
                        f"use one of {', '.join(builtin_names())}, or a .npz / .pt file holding 'x' (and 'y')")
    arrays = _read_file(path)
    source = {"kind": "file", "path": str(path.resolve()), "sha256": _sha256(path), "label": path.name}
    recordings = _recordings(arrays, path)
    if recordings:
        return _event_samples(recordings, arrays.get("y"), source, sensor_size, timesteps)
    if "x" not in arrays:
        raise DataError(f"'{path}' holds no 'x'", "store the inputs under the key 'x' (and labels under 'y')")
    return validate_samples(arrays["x"], arrays.get("y"), source, timesteps)


def _recordings(arrays: dict, path: Path) -> dict[str, np.ndarray]:
    """The event recordings of a file (structured arrays, in the order saved); {} when it holds none."""
    recordings = {k: v for k, v in arrays.items() if is_recording(v)}
    others = [k for k in arrays if k not in recordings and k != "y"]
    if recordings and others:
        raise DataError(f"'{path}' mixes event recordings with other arrays ({', '.join(others)})",
                        "store one structured event array per sample, and labels under 'y'")
    if not recordings and path.suffix == ".npz" and not arrays:
        raise DataError(f"'{path}' holds no arrays", "store inputs under 'x', or one event recording per sample")
    return recordings


def _event_samples(recordings: dict[str, np.ndarray], y: object, source: dict,
                   sensor_size: tuple[int, int, int] | None, timesteps: int | None) -> Samples:
    """Recordings binned into a sequence; the source records how, so DIR can bin them again alike."""
    if sensor_size is None or timesteps is None:
        raise DataError(f"'{source['label']}' holds event recordings: binning them needs the sensor size and T",
                        "pass --sensor-size W,H,P (tonic's order) and --timesteps T")
    x = recordings_to_sequence(recordings, tuple(sensor_size), timesteps, MAX_ELEMENTS)
    events = {"sensor_size": list(sensor_size), "timesteps": timesteps, "recordings": len(recordings),
              "binning": BINNING}
    return validate_samples(x, y, source | {"events": events}, timesteps)


def random_samples(shape: tuple[int, ...], count: int = 16, seed: int = 0) -> Samples:
    """Seeded uniform frames, for a model given with `--input-shape` and no data."""
    x = torch.rand(count, *shape, generator=torch.Generator().manual_seed(seed))
    return Samples(x, None, FRAMES, {"kind": "random", "shape": list(shape), "seed": seed,
                                     "label": "uniform random inputs"})


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _read_file(path: Path) -> dict:
    """The arrays of a data file by name (a `.npy` holds one: `x`, or one event recording)."""
    if path.suffix == ".npy":
        return {"x": _read_npy(path)}
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                arrays = {k: archive[k] for k in archive.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError, KeyError) as exc:
            raise DataError(f"'{path}' is not a readable .npz file ({exc})",
                            "write it with numpy.savez(path, x=..., y=...)") from exc
    elif path.suffix in (".pt", ".pth"):
        try:
            arrays = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as exc:
            raise DataError(f"'{path}' holds pickled Python objects, which scadeploy never loads",
                            "save a plain dict: torch.save({'x': x, 'y': y}, path)") from exc
        except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError, OverflowError) as exc:
            raise DataError(f"'{path}' is not a readable torch file ({exc.__class__.__name__})") from exc
    else:
        raise DataError(f"'{path}' has an unknown data format '{path.suffix}'", "use a .npz, .npy or .pt file")
    if not isinstance(arrays, dict):
        raise DataError(f"'{path}' holds no 'x'", "store the inputs under the key 'x' (and labels under 'y')")
    return arrays


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"'{path}' is not a readable .npy file ({' '.join(str(exc).split())[:160]})",
                        "write it with numpy.save(path, events)") from exc


def _as_tensor(value: object, name: str) -> torch.Tensor:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise DataError(f"'{name}' has dtype {value.dtype}, expected numbers")
        value = torch.from_numpy(np.ascontiguousarray(value))
    if not isinstance(value, torch.Tensor):
        raise DataError(f"'{name}' is a {type(value).__name__}, expected an array or tensor")
    if value.is_complex() or value.dtype in (torch.quint8, torch.qint8, torch.qint32):
        raise DataError(f"'{name}' has dtype {value.dtype}, expected real numbers")
    return value


def validate_samples(x: object, y: object, source: dict, timesteps: int | None = None) -> Samples:
    """Check rank, dtype, finiteness and x/y lengths; return the samples as float32 (labels int64)."""
    x = _as_tensor(x, "x")
    if x.dim() not in (4, 5):
        raise DataError(f"x has shape {list(x.shape)}: expected frames [N, C, H, W] or a sequence "
                        "[T, N, C, H, W] (time first)")
    if x.numel() == 0:
        raise DataError(f"x has shape {list(x.shape)}: no samples")
    if x.numel() > MAX_ELEMENTS:
        raise DataError(f"x has {x.numel():,} elements, more than the {MAX_ELEMENTS:,} scadeploy reads at once",
                        "pass a smaller subset")
    layout = FRAMES if x.dim() == 4 else SEQUENCE
    if layout == SEQUENCE and timesteps is not None and x.shape[0] != timesteps:
        looks = " (it looks like [N, T, ...]: put time first)" if x.shape[1] == timesteps else ""
        raise DataError(f"x is a sequence of {x.shape[0]} steps but the model runs T={timesteps}{looks}",
                        f"pass -T {x.shape[0]} or give x as [T={timesteps}, N, C, H, W]")
    x = x.float()
    if not bool(torch.isfinite(x).all()):
        raise DataError("x holds NaN or infinite values", "clean the data before deploying")
    samples = Samples(x.contiguous(), None, layout, source)
    if y is not None:
        labels = _as_tensor(y, "y")
        if labels.dim() != 1 or labels.dtype.is_floating_point or labels.dtype == torch.bool:
            raise DataError(f"y has dtype {labels.dtype} and shape {list(labels.shape)}: expected integer class "
                            "labels [N]")
        if labels.shape[0] != samples.count:
            raise DataError(f"x holds {samples.count} samples but y holds {labels.shape[0]} labels",
                            "give one label per sample")
        if labels.numel() and int(labels.min()) < 0:
            raise DataError("y holds negative labels", "labels are class indices 0..K-1")
        samples = Samples(samples.x, labels.long(), layout, source)
    return samples
