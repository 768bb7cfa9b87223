"""The backends a target may name: one table from name to the module that compiles for it and the
options dataclass of its table. `load_target` and the compiler both look backends up here."""

from __future__ import annotations

from dataclasses import dataclass

from scadeploy.errors import TargetError
from scadeploy.targets.backend_options import LavaOptions, NirOptions, OnnxOptions, OpenVinoOptions


@dataclass(frozen=True)
class Backend:
    module: str  # imported only when a target needs it (Lava changes process-wide settings at import)
    options: type  # the dataclass of the backend's [name] table (`backend_options.py`)


BACKENDS: dict[str, Backend] = {
    "onnx": Backend("scadeploy.backends.onnx.export", OnnxOptions),
    "openvino": Backend("scadeploy.backends.openvino.export", OpenVinoOptions),
    "lava": Backend("scadeploy.backends.lava.export", LavaOptions),
    "nir": Backend("scadeploy.backends.nir.export", NirOptions),
}


def lookup_backend(name: object, user: str = "a target") -> Backend:
    """The registry entry of `name`; an unknown name is a TargetError that lists the known ones."""
    if not isinstance(name, str) or name not in BACKENDS:
        raise TargetError(f"{user} names backend {name!r}", f"backend must be one of {', '.join(BACKENDS)}")
    return BACKENDS[name]
