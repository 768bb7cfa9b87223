"""Deployment targets: one TOML file each in `scadeploy/targets/` (shipped in the wheel), loaded and validated here.

A target names its backend and carries that backend's options in a table of the same name:

    name = "onnx-cpu"
    backend = "onnx"
    description = "ONNX Runtime on the CPU"
    [onnx]
    opset = 17

Every field is checked when the file is read (`OPTION_RULES`): its type, its range, and unknown
keys. The Lava bit widths are bounded by what Lava's fixed-point processes hold (see `LAVA_BITS`).
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from scadeploy.errors import TargetError

TARGETS_DIR = Path(__file__).resolve().parent  # the built-in target files ship inside the package
KNOWN_BACKENDS = ("onnx", "openvino", "lava", "nir")
TOP_LEVEL_KEYS = ("name", "backend", "description")

# Bit widths Lava's fixed-point Loihi 2 models hold, as (low, high). The highs come from Lava itself:
# - weight_bits: |w| <= 2^bits - 2 must stay inside lava-dl netx's synapse range: its
#   `optimize_weight_bits` clips mixed-sign weights to [-256, 254], and Lava's Dense holds 8-bit weights,
#   so 8 bits (|w| <= 254) is the most; 9 would give weights up to 510 that netx silently clips.
# - bias_bits: LIF `bias_mant` has precision 13; threshold_bits: `vth` has precision 17;
#   state_bits: the current u and voltage v have precision 24;
# - input_bits: a graded message carries input_bits + a sign inside the 24-bit spike payload.
# The lows keep at least one nonzero level (a weight limit of 2, a bias limit of 1, 2^7 of state headroom).
LAVA_BITS: dict[str, tuple[int, int]] = {
    "weight_bits": (2, 8),
    "bias_bits": (2, 13),
    "threshold_bits": (2, 17),
    "state_bits": (8, 24),
    "input_bits": (1, 23),
}
RESOURCE_KEYS = ("cores_per_chip", "chips", "neurons_per_core", "synapses_per_core")
MAX_COUNT = 2**40  # a bound for counts in resource tables, far above any real system


@dataclass(frozen=True)
class Target:
    name: str
    backend: str
    description: str
    options: dict = field(default_factory=dict)
    path: Path | None = None


Rule = Callable[[object], str | None]  # None when the value is valid, else what is wrong


def _integer(low: int, high: int) -> Rule:
    def check(value: object) -> str | None:
        ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
        return None if ok else f"must be an integer in {low}..{high}, got {value!r}"
    return check


def _one_of(*choices: str) -> Rule:
    def check(value: object) -> str | None:
        return None if value in choices else f"must be one of {', '.join(choices)}, got {value!r}"
    return check


def _flag(value: object) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, got {value!r}"


def _tolerance(value: object) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= 1e3
    return None if ok else f"must be a positive finite number (at most 1000), got {value!r}"


def _time_step(value: object) -> str | None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and 0 < value <= 1
    return None if ok else f"must be a time step in seconds in (0, 1], got {value!r}"


def _resources(value: object) -> str | None:
    if not isinstance(value, dict):
        return f"must be a table, got {value!r}"
    unknown = sorted(set(value) - set(RESOURCE_KEYS))
    if unknown:
        return f"has unknown keys {unknown} (known: {', '.join(RESOURCE_KEYS)})"
    for key, count in value.items():
        problem = _integer(1, MAX_COUNT)(count)
        if problem:
            return f"{key} {problem}"
    return None


# Per backend, the options its table may hold. The backends check these again with their own meaning.
OPTION_RULES: dict[str, dict[str, Rule]] = {
    "onnx": {
        "opset": _integer(17, 21),
        "provider": _one_of("cpu", "cuda"),
        "intra_op_num_threads": _integer(0, 1024),
        "graph_optimization_level": _one_of("disable", "basic", "extended", "all"),
        "align_channels": _integer(1, 256),
        "allow_spinning": _flag,
        "parity_tolerance": _tolerance,
    },
    "openvino": {
        "opset": _integer(17, 21),
        "precision": _one_of("f32", "bf16"),
        "performance_hint": _one_of("LATENCY", "THROUGHPUT"),
        "inference_num_threads": _integer(0, 1024),
        "align_channels": _integer(1, 256),
        "parity_tolerance": _tolerance,
    },
    "lava": {
        **{key: _integer(low, high) for key, (low, high) in LAVA_BITS.items()},
        "parity_samples": _integer(1, 100_000),
        "resources": _resources,
    },
    "nir": {
        "dt": _time_step,
        "parity_samples": _integer(1, 4096),
    },
}


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
    backend = data.get("backend")
    if backend not in KNOWN_BACKENDS:
        raise TargetError(f"target '{path.stem}' names backend {backend!r}",
                          f"backend must be one of {', '.join(KNOWN_BACKENDS)}")
    unknown = sorted(set(data) - set(TOP_LEVEL_KEYS) - {backend})
    if unknown:
        raise TargetError(f"target '{path.stem}' has unknown keys {unknown}",
                          f"a target holds {', '.join(TOP_LEVEL_KEYS)} and a [{backend}] table")
    for key in ("name", "description"):
        if key in data and not isinstance(data[key], str):
            raise TargetError(f"target '{path.stem}': {key} must be a string, got {data[key]!r}")
    options = data.get(backend, {})
    if not isinstance(options, dict):
        raise TargetError(f"target '{path.stem}': [{backend}] must be a table")
    check_options(path.stem, backend, options)
    return Target(data.get("name", path.stem), backend, data.get("description", ""), options, path)


def check_options(target: str, backend: str, options: dict) -> None:
    """One TargetError naming the first bad field of a backend table and what it may hold."""
    rules = OPTION_RULES[backend]
    unknown = sorted(set(options) - set(rules))
    if unknown:
        raise TargetError(f"target '{target}': unknown [{backend}] options {unknown}",
                          f"known options: {', '.join(rules)}")
    for key, value in options.items():
        problem = rules[key](value)
        if problem:
            hint = None
            if key in LAVA_BITS and backend == "lava":
                hint = f"Lava's fixed-point Loihi 2 processes hold {key} in {LAVA_BITS[key][0]}..{LAVA_BITS[key][1]}"
            raise TargetError(f"target '{target}': [{backend}] {key} {problem}", hint)
