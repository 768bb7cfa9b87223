"""What the NIR exporter and importer must agree on: the time step, node names, the `nir` package."""

from __future__ import annotations

import re

from scadeploy.errors import UnsupportedError

DEFAULT_DT = 1e-4  # what spikingjelly, snnTorch and Norse default to


def import_nir():
    """The `nir` package, or one clear error saying how to install it."""
    try:
        import nir
    except ImportError as exc:
        raise UnsupportedError("the NIR target needs the 'nir' package",
                               "run make setup, or pip install --no-deps nir==1.0.8 nirtorch==2.6") from exc
    return nir


def nir_name(name: str) -> str:
    """A node name every importer accepts as a module name (nirtorch uses them as attributes)."""
    return re.sub(r"\W", "_", name)
