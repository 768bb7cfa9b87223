"""`DIR/manifest.json` read back: the fields `benchmark` and `simulate` use, checked before they are used.

The manifest is written by `compile`, but a compiled directory is user input once it is on disk:
each field read here has its type checked and file names must stay inside DIR.

`targets` maps each target that compiled to its section (backend, files, parity); `refused` maps each
requested target that refused the model to `{"backend", "reason", "hint"?}` (absent in directories compiled
before targets could be refused, read as none). A name is in one of the two, never both.
"""

from __future__ import annotations

import json
from pathlib import Path

from scadeploy.errors import DataError

MANIFEST = "manifest.json"


def read_manifest(out_dir: str | Path) -> dict:
    """The manifest of a compiled directory; one DataError naming the first malformed field."""
    out_dir = Path(out_dir)
    path = out_dir / MANIFEST
    if not path.is_file():
        raise DataError(f"'{out_dir}' has no {MANIFEST}",
                        "run `scadeploy compile CKPT -o DIR` first (with --target loihi2-sim to simulate)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DataError(f"'{path}' is not valid JSON: {' '.join(str(exc).split())[:120]}",
                        "re-run scadeploy compile") from exc
    if not isinstance(manifest, dict):
        raise DataError(f"'{path}' holds a {type(manifest).__name__}, expected an object", "re-run scadeploy compile")
    source = manifest.get("source")
    if source is not None:
        _expect(isinstance(source, dict), path, "source must be an object")
        for key in ("path", "sha256"):
            _expect(isinstance(source.get(key, ""), str), path, f"source.{key} must be a string")
    targets = manifest.get("targets", {})
    _expect(isinstance(targets, dict), path, "targets must be an object")
    for name, section in targets.items():
        _expect(isinstance(section, dict) and isinstance(section.get("backend"), str), path,
                f"targets.{name} must be an object with a backend")
        files = section.get("files", [])
        _expect(isinstance(files, list) and all(_inside(f) for f in files) and
                (section["backend"] != "lava" or files), path,
                f"targets.{name}.files must list file names inside the directory")
    _check_refused(manifest.get("refused", {}), targets, path)
    return manifest


def _check_refused(refused: object, targets: dict, path: Path) -> None:
    _expect(isinstance(refused, dict), path, "refused must be an object")
    for name, entry in refused.items():
        _expect(isinstance(entry, dict) and isinstance(entry.get("backend"), str) and
                isinstance(entry.get("reason"), str) and isinstance(entry.get("hint", ""), str), path,
                f"refused.{name} must be an object with a backend and a reason")
        _expect(name not in targets, path, f"'{name}' is both in targets and in refused")


def refused_targets(manifest: dict, backend: str | None = None) -> dict[str, str]:
    """Target name -> reason of each refused target (of `backend` only, when given)."""
    return {name: entry["reason"] for name, entry in manifest.get("refused", {}).items()
            if backend is None or entry["backend"] == backend}


def _inside(name: object) -> bool:
    return isinstance(name, str) and bool(name) and Path(name).name == name and name not in (".", "..")


def _expect(condition: bool, path: Path, what: str) -> None:
    if not condition:
        raise DataError(f"'{path}' is malformed: {what}", "re-run scadeploy compile")


def record_in_manifest(out_dir: str | Path, key: str, section: dict) -> Path:
    """Set one top-level section of DIR/manifest.json, replacing the file atomically (readers never see half)."""
    from scadeploy.artifact.files import atomic_write_bytes

    manifest = read_manifest(out_dir) | {key: section}
    path = Path(out_dir) / MANIFEST
    atomic_write_bytes(path, (json.dumps(manifest, indent=2) + "\n").encode())
    return path
