"""The parts of a manifest, one frozen dataclass each, read from JSON with every field checked.

Records whose shape another module owns stay plain mappings, checked only to be objects: a target's
parity, resources and options (its backend writes them), the parity records (`parity.py`), a
checkpoint's metadata. Each part's `from_dict(raw, where)` raises `Malformed` naming the field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scadeploy.artifact import json_fields as f
from scadeploy.artifact.layout import is_file_name
from scadeploy.ir.graph import Encoding

DATA_KINDS = ("builtin", "file", "compiled", "random")
MAX_RANDOM_SAMPLES = 1 << 20  # a bound on the inputs a `random` data source may ask to draw


@dataclass(frozen=True)
class ModelInfo:
    """What the compiled model takes and gives (per sample), and how many steps it runs."""

    timesteps: int
    encoding: Encoding
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"timesteps": self.timesteps, "encoding": self.encoding.value,
                "input_shape": list(self.input_shape), "output_shape": list(self.output_shape)}

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> ModelInfo:
        encoding = raw.get("encoding")
        f.expect(encoding in [e.value for e in Encoding],
                 f"encoding must be one of {', '.join(e.value for e in Encoding)}")
        return cls(f.an_int(raw.get("timesteps"), "timesteps", low=1), Encoding(encoding),
                   f.a_shape(raw.get("input_shape"), "input_shape"), f.a_shape(raw.get("output_shape"), "output_shape"))


@dataclass(frozen=True)
class Source:
    """The file the model was compiled from and its sha256; `details` as its frontend recorded them
    (arch and meta of a checkpoint, the factory of an own model, dt and the peer parity of a NIR file)."""

    kind: str
    path: str
    sha256: str
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "path": self.path, "sha256": self.sha256, **self.details}

    @classmethod
    def from_dict(cls, raw: object, where: str = "source") -> Source:
        raw = f.an_object(raw, where)
        kind, path, sha = (f.a_string(raw.get(key), f"{where}.{key}") for key in ("kind", "path", "sha256"))
        return cls(kind, path, sha, {k: v for k, v in raw.items() if k not in ("kind", "path", "sha256")})


@dataclass(frozen=True)
class DataSource:
    """Where the parity inputs came from, so that benchmark and simulate can load the same ones again.

    `kind` says which fields matter: builtin (`name`, `data_dir`), file (`path`, `sha256`, and `events`
    for recordings: the sensor and T they were binned with), compiled (`file` in DIR), random (`samples`).
    `details` keeps the rest as written (label, layout, sample_shape, labels, seed...).
    """

    kind: str
    label: str | None = None
    name: str | None = None
    data_dir: str | None = None
    path: str | None = None
    sha256: str | None = None
    file: str | None = None
    samples: int | None = None
    events: Mapping[str, Any] | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sensor_size(self) -> tuple[int, int, int] | None:
        """The (W, H, P) event recordings were binned for; None for other data."""
        return None if self.events is None else tuple(self.events["sensor_size"])  # type: ignore[return-value]

    def to_dict(self) -> dict[str, Any]:
        typed = {"kind": self.kind, "label": self.label, "name": self.name, "data_dir": self.data_dir,
                 "path": self.path, "sha256": self.sha256, "file": self.file, "samples": self.samples,
                 "events": None if self.events is None else dict(self.events)}
        return {k: v for k, v in typed.items() if v is not None} | dict(self.details)

    @classmethod
    def from_dict(cls, raw: object, where: str = "data") -> DataSource:
        raw = f.an_object(raw, where)
        kind = raw.get("kind")
        f.expect(kind in DATA_KINDS, f"{where}.kind must be one of {', '.join(DATA_KINDS)}")
        needed = {"builtin": ("name",), "file": ("path", "sha256"), "compiled": ("file",)}.get(kind, ())
        for key in needed:
            f.expect(raw.get(key) is not None, f"{where}.{key} is needed by a {kind} data source")
        strings = {k: f.optional(f.a_string, raw.get(k), f"{where}.{k}")
                   for k in ("label", "name", "data_dir", "path", "sha256")}
        typed = {*strings, "kind", "file", "samples", "events"}
        return cls(kind, **strings, file=f.optional(f.a_file_name, raw.get("file"), f"{where}.file"),
                   samples=f.optional(_sample_count(kind), raw.get("samples"), f"{where}.samples"),
                   events=f.optional(_events, raw.get("events"), f"{where}.events"),
                   details={k: v for k, v in raw.items() if k not in typed})


def _sample_count(kind: str) -> Callable[[object, str], int]:
    """The reader of `samples`: a count of inputs, bounded when it is how many random ones to draw."""
    high = MAX_RANDOM_SAMPLES if kind == "random" else None
    return lambda value, where: f.an_int(value, where, low=0, high=high)


def _events(value: object, where: str) -> dict[str, Any]:
    events = f.an_object(value, where)
    size = events.get("sensor_size")
    f.expect(isinstance(size, list) and len(size) == 3 and
             all(isinstance(d, int) and not isinstance(d, bool) and 0 < d <= 1 << 16 for d in size),
             f"{where}.sensor_size must be [W, H, P]")
    return events


@dataclass(frozen=True)
class LayerCosts:
    """One conv/linear layer before and after stripping: channels, parameters and dense MACs per step."""

    layer: str
    op: str
    channels_before: int
    channels_after: int
    masked: int
    params_before: int
    params_after: int
    dense_macs_before: int
    dense_macs_after: int


@dataclass(frozen=True)
class BeforeAfter:
    before: int
    after: int


@dataclass(frozen=True)
class CostSummary:
    """Per layer and in total, what stripping removed (what `inspect` shows as its table)."""

    layers: tuple[LayerCosts, ...]
    params: BeforeAfter
    dense_macs_per_step: BeforeAfter

    def to_dict(self) -> dict[str, Any]:
        return f.plain(self)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> CostSummary:
        rows = raw.get("layers")
        f.expect(isinstance(rows, list), "layers must be a list")
        return cls(tuple(f.a_record(LayerCosts, row, f"layers[{i}]") for i, row in enumerate(rows)),
                   f.a_record(BeforeAfter, raw.get("params"), "params"),
                   f.a_record(BeforeAfter, raw.get("dense_macs_per_step"), "dense_macs_per_step"))


@dataclass(frozen=True)
class CompiledTarget:
    """A target that took the model: its backend, the files it wrote into DIR, and the backend's own record
    (parity, resources, options...) in `details`, as the backend wrote it."""

    backend: str
    files: tuple[str, ...]
    details: Mapping[str, Any] = field(default_factory=dict)

    @property
    def parity(self) -> Mapping[str, Any]:
        return self.details.get("parity", {})

    def to_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "files": list(self.files), **self.details}

    @classmethod
    def of(cls, backend: str, section: Mapping[str, Any]) -> CompiledTarget:
        """The entry of a backend's export section (`{"files": [...], ...}`)."""
        return cls(backend, tuple(section["files"]), {k: v for k, v in section.items() if k != "files"})

    @classmethod
    def from_dict(cls, raw: object, where: str) -> CompiledTarget:
        raw = f.an_object(raw, where, "must be an object with a backend")
        backend = raw.get("backend")
        f.expect(isinstance(backend, str), f"{where} must be an object with a backend")
        files = raw.get("files")
        f.expect(isinstance(files, list) and bool(files) and all(map(is_file_name, files)),
                 f"{where}.files must list file names inside the directory")
        return cls.of(backend, raw | {"files": files})


@dataclass(frozen=True)
class Refusal:
    """A requested target that refused the model at compile: why, in one line, and what to do."""

    backend: str
    reason: str
    hint: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return f.plain(self)

    @classmethod
    def from_dict(cls, raw: object, where: str) -> Refusal:
        return f.a_record(cls, raw, where, "must be an object with a backend and a reason")
