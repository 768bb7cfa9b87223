"""Deployment targets: one TOML file each in `targets/`, loaded and validated here.

A target names its backend and carries that backend's options in a table of the same name:

    name = "onnx-cpu"
    backend = "onnx"
    description = "ONNX Runtime on the CPU"
    [onnx]
    opset = 17
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from scadeploy.errors import TargetError

TARGETS_DIR = Path(__file__).resolve().parent.parent / "targets"
KNOWN_BACKENDS = ("onnx", "lava")


@dataclass(frozen=True)
class Target:
    name: str
    backend: str
    description: str
    options: dict = field(default_factory=dict)
    path: Path | None = None


def available_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))


def load_target(name_or_path: str) -> Target:
    """A target by name (a file in `targets/`) or by the path of a TOML file."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = TARGETS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise TargetError(f"unknown target '{name_or_path}'",
                          f"choose one of {', '.join(available_targets())} or give a .toml file")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"target file '{path}' is not valid TOML: {exc}") from exc
    backend = data.get("backend")
    if backend not in KNOWN_BACKENDS:
        raise TargetError(f"target '{path.stem}' names backend {backend!r}",
                          f"backend must be one of {', '.join(KNOWN_BACKENDS)}")
    options = data.get(backend, {})
    if not isinstance(options, dict):
        raise TargetError(f"target '{path.stem}': [{backend}] must be a table")
    return Target(str(data.get("name", path.stem)), backend, str(data.get("description", "")), options, path)
