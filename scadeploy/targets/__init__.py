"""Deployment targets: one TOML file each in `scadeploy/targets/` (shipped in the wheel), loaded and checked here.

A target names its backend and carries that backend's options in a table of the same name:

    name = "onnx-cpu"
    backend = "onnx"
    description = "ONNX Runtime on the CPU"
    [onnx]
    opset = 17

The backend is looked up in `registry.BACKENDS`, and its table is read into that backend's options
dataclass (`backend_options.py`) by the one parser (`options.parse_table`): every field's type and
range, and unknown keys, are checked when the file is read, so the backends take typed values.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from scadeploy.errors import TargetError
from scadeploy.targets.backend_options import BackendOptions
from scadeploy.targets.options import parse_table
from scadeploy.targets.registry import lookup_backend

TARGETS_DIR = Path(__file__).resolve().parent  # the built-in target files ship inside the package
TOP_LEVEL_KEYS = ("name", "backend", "description")


@dataclass(frozen=True)
class Target:
    name: str
    backend: str
    description: str
    options: BackendOptions  # the typed [backend] table
    path: Path | None = None

    def __post_init__(self) -> None:
        expected = lookup_backend(self.backend, f"target '{self.name}'").options
        if not isinstance(self.options, expected):
            raise TargetError(f"target '{self.name}': its options are a {type(self.options).__name__}, "
                              f"not the {expected.__name__} of backend '{self.backend}'",
                              "read targets with load_target, or build the options dataclass")


def available_targets() -> list[str]:
    return sorted(p.stem for p in TARGETS_DIR.glob("*.toml"))


def load_target(name_or_path: str) -> Target:
    """A target by name (a file in `scadeploy/targets/`) or by the path of a TOML file, every field checked."""
    path = Path(name_or_path)
    if path.suffix != ".toml":
        path = TARGETS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise TargetError(f"unknown target '{name_or_path}'",
                          f"choose one of {', '.join(available_targets())} or give a .toml file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise TargetError(f"target file '{path}' is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise TargetError(f"target file '{path}' cannot be read: {exc.strerror}") from exc
    return _target_from(data, path)


def _target_from(data: dict, path: Path) -> Target:
    """The Target a parsed TOML document describes (`path` names it in errors)."""
    where = f"target '{path.stem}'"
    backend = data.get("backend")
    spec = lookup_backend(backend, where)
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS) - {backend})
    if unknown:
        raise TargetError(f"{where} has unknown keys {unknown}",
                          f"a target holds {', '.join(TOP_LEVEL_KEYS)} and a [{backend}] table")
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise TargetError(f"{where}: {key} must be a string, got {data[key]!r}")
    options = parse_table(spec.options, data.get(backend, {}), backend, where)
    return Target(data.get("name", path.stem), backend, data.get("description", ""), options, path)
