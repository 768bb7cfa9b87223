"""`DIR/manifest.json`, the compiled directory's table of contents: one typed, versioned `Manifest`,
written and read by this module alone.

```
{"format": "scadeploy.compiled", "version": 1, "scadeploy": "0.1.0", "created": "2025-...",
 "source": {"kind", "path", "sha256", ...} | null,  "data": {"kind", ...},
 "timesteps", "encoding", "input_shape", "output_shape",
 "graphs": {"stripped": "stripped.graph.json", "masked": "masked.graph.json"}, "masks": "given",
 "layers": [...], "params": {"before", "after"}, "dense_macs_per_step": {...}, "kept_masked_channels": [...],
 "parity": {"stripped_vs_masked": {...}, "trace_vs_model": {...}},
 "targets": {name: {"backend", "files", ...}}, "refused": {name: {"backend", "reason", "hint"?}},
 "recommended_runtime": {...}}                   (the last written by `scadeploy benchmark -r auto`)
```
`targets` maps each target that compiled to its files and its backend's record; `refused` each
requested target that refused the model to why (absent in directories compiled before targets could
be refused: none). A name is in one of the two, never both. A manifest without "format" but with the
"scadeploy" writer version predates the versioned format and reads as version 1.

A compiled directory is user input once it is on disk: reading checks every field (`from_dict`), and
a missing, foreign, newer or malformed manifest is one ArtifactError (exit 2) saying what to do.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scadeploy.artifact import json_fields as f
from scadeploy.artifact.files import atomic_write_bytes
from scadeploy.artifact.layout import GRAPHS, MANIFEST, Layout
from scadeploy.artifact.manifest_parts import CompiledTarget, CostSummary, DataSource, ModelInfo, Refusal, Source
from scadeploy.errors import ArtifactError
from scadeploy.ir.passes.strip_channels import KeptChannel

FORMAT = "scadeploy.compiled"
VERSION = 1
WRITER = "scadeploy"  # the key of the version of scadeploy that wrote DIR
RECOMPILE = "re-run scadeploy compile"
REQUIRED = (WRITER, "created", "timesteps", "encoding", "input_shape", "output_shape", "graphs", "masks", "layers",
            "params", "dense_macs_per_step", "kept_masked_channels", "parity", "targets")
OPTIONAL = ("format", "version", "source", "data", "refused", "recommended_runtime")


@dataclass(frozen=True)
class Manifest:
    """What DIR holds: the model compiled, from what and on which inputs, its costs, parity, and targets."""

    scadeploy_version: str  # of the scadeploy that wrote it
    created: str
    model: ModelInfo
    source: Source | None  # None: compiled from Python (`scadeploy.compile`)
    data: DataSource | None  # None: the inputs are not recorded, benchmark and simulate need --data
    graphs: Mapping[str, str]  # "stripped" / "masked" -> graph file in DIR
    masks: str  # "given" or "inferred from zeroed weights"
    costs: CostSummary
    kept_masked_channels: tuple[KeptChannel, ...]
    parity: Mapping[str, Mapping[str, Any]]  # records of `parity.py`, by comparison
    targets: Mapping[str, CompiledTarget] = field(default_factory=dict)
    refused: Mapping[str, Refusal] = field(default_factory=dict)
    recommended_runtime: Mapping[str, Any] | None = None

    @property
    def data_label(self) -> str | None:
        """The inputs the parity was measured on, for people ("digits test split")."""
        return self.data.label if self.data is not None else None

    def target_of(self, backend: str) -> tuple[str, CompiledTarget] | None:
        """The name and entry of the target of `backend` that compiled, if any (one per backend)."""
        return next(((name, t) for name, t in self.targets.items() if t.backend == backend), None)

    def refused_of(self, backend: str | None = None) -> dict[str, Refusal]:
        """The refused targets (of `backend` only, when given)."""
        return {name: r for name, r in self.refused.items() if backend is None or r.backend == backend}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to DIR/manifest.json (`from_dict` reads it back to an equal Manifest)."""
        data = {} if self.data is None else {"data": self.data.to_dict()}
        runtime = {} if self.recommended_runtime is None else {"recommended_runtime": dict(self.recommended_runtime)}
        return {"format": FORMAT, "version": VERSION, WRITER: self.scadeploy_version, "created": self.created,
                "source": None if self.source is None else self.source.to_dict(), **data, **self.model.to_dict(),
                "graphs": dict(self.graphs), "masks": self.masks, **self.costs.to_dict(),
                "kept_masked_channels": f.plain(self.kept_masked_channels),
                "parity": {key: dict(record) for key, record in self.parity.items()},
                "targets": {name: t.to_dict() for name, t in self.targets.items()},
                "refused": {name: r.to_dict() for name, r in self.refused.items()}, **runtime}

    @classmethod
    def from_dict(cls, document: object, origin: str = "the manifest") -> Manifest:
        """Check and read a manifest's JSON object; `origin` (its path) starts every error message."""
        if not isinstance(document, dict):
            raise ArtifactError(f"{origin} holds a {type(document).__name__}, expected an object", RECOMPILE)
        _check_format(document, origin)
        try:
            return _read(document)
        except f.Malformed as exc:
            raise ArtifactError(f"{origin} is malformed: {exc}", RECOMPILE) from exc


def _check_format(document: dict, origin: str) -> None:
    """A scadeploy manifest of a version this scadeploy reads; else why not."""
    if "format" not in document and "version" not in document and isinstance(document.get(WRITER), str):
        return  # written before the format was versioned: version 1
    if document.get("format") != FORMAT:
        raise ArtifactError(f"{origin} is not a scadeploy manifest (no format '{FORMAT}')",
                            "give a directory written by `scadeploy compile CKPT -o DIR`")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ArtifactError(f"{origin} is malformed: version must be a positive integer", RECOMPILE)
    if version > VERSION:
        raise ArtifactError(f"{origin} has manifest version {version}, this scadeploy reads version {VERSION}",
                            "upgrade scadeploy, or re-run scadeploy compile with this one")


def _read(raw: dict) -> Manifest:
    unknown = sorted(set(raw) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise f.Malformed(f"unknown field '{unknown[0]}'")
    missing = [key for key in REQUIRED if key not in raw]
    if missing:
        raise f.Malformed(f"{missing[0]} is missing")
    targets = f.objects_by_name(raw["targets"], "targets", CompiledTarget.from_dict)
    refused = f.objects_by_name(raw.get("refused", {}), "refused", Refusal.from_dict)
    both = sorted(set(targets) & set(refused))
    if both:
        raise f.Malformed(f"'{both[0]}' is both in targets and in refused")
    kept = raw["kept_masked_channels"]
    f.expect(isinstance(kept, list), "kept_masked_channels must be a list")
    parity = f.an_object(raw["parity"], "parity")
    return Manifest(
        f.a_string(raw[WRITER], WRITER), f.a_string(raw["created"], "created"), ModelInfo.from_dict(raw),
        f.optional(Source.from_dict, raw.get("source"), "source"),
        f.optional(DataSource.from_dict, raw.get("data"), "data"), _graphs(raw["graphs"]),
        f.a_string(raw["masks"], "masks"), CostSummary.from_dict(raw),
        tuple(f.a_record(KeptChannel, entry, f"kept_masked_channels[{i}]") for i, entry in enumerate(kept)),
        {key: f.an_object(record, f"parity.{key}") for key, record in parity.items()}, targets, refused,
        f.optional(f.an_object, raw.get("recommended_runtime"), "recommended_runtime"))


def _graphs(value: object) -> dict[str, str]:
    graphs = f.an_object(value, "graphs")
    f.expect(sorted(graphs) == sorted(GRAPHS), f"graphs must name exactly the {' and '.join(GRAPHS)} graphs")
    return {key: f.a_file_name(name, f"graphs.{key}") for key, name in graphs.items()}


def read_manifest(out_dir: str | Path) -> Manifest:
    """The manifest of a compiled directory, every field checked; one ArtifactError for the first problem."""
    path = Layout(Path(out_dir)).manifest
    if not path.is_file():
        raise ArtifactError(f"'{out_dir}' has no {MANIFEST}",
                            "run `scadeploy compile CKPT -o DIR` first (with --target loihi2-sim to simulate)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"'{path}' is not valid JSON: {' '.join(str(exc).split())[:120]}", RECOMPILE) from exc
    return Manifest.from_dict(document, f"'{path}'")


def write_manifest(out_dir: str | Path, manifest: Manifest) -> Path:
    """Write DIR/manifest.json, replacing the file atomically (readers never see half of it)."""
    path = Layout(Path(out_dir)).manifest
    atomic_write_bytes(path, (json.dumps(manifest.to_dict(), indent=2) + "\n").encode())
    return path
