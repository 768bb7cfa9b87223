"""Import Lava on Python 3.11: a run-time fix for lava-nc 0.10, applied without touching site-packages.

lava-nc 0.10 declares dataclass fields with a mutable default (`x: ByteEncoder = ByteEncoder()` in
`lava/magma/compiler/var_model.py`), which Python 3.11 rejects at import. `ensure_lava()` installs a
`sys.meta_path` finder for exactly that module whose loader rewrites those defaults into
`field(default_factory=ByteEncoder)` in the source text and compiles the patched text itself.

Lava also sets the multiprocessing start method when it is imported, so scadeploy never imports it at
module level: every function that needs Lava calls `import_lava()` first.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import logging
import multiprocessing
import re
import sys
from types import CodeType, ModuleType

from scadeploy.errors import UnsupportedError

PATCHED_MODULE = "lava.magma.compiler.var_model"
_MUTABLE_DEFAULT = re.compile(r"^(\s+\w+: ByteEncoder) = ByteEncoder\(\)\s*$", re.MULTILINE)
INSTALL_HINT = ("install it as the README does: pip install --no-deps --ignore-requires-python "
                "lava-nc==0.10.0 lava-dl==0.6.0 (plus asteval<0.10, networkx<=2.8.7, opencv-python-headless)")


def patch_source(source: str) -> str:
    """`x: ByteEncoder = ByteEncoder()` -> `x: ByteEncoder = field(default_factory=ByteEncoder)`."""
    patched, count = _MUTABLE_DEFAULT.subn(r"\1 = field(default_factory=ByteEncoder)", source)
    if count == 0:
        return source
    # NOTE: a `from __future__` import must stay the first statement, so the new import goes after it.
    lines = patched.splitlines(keepends=True)
    future = [i for i, line in enumerate(lines) if line.startswith("from __future__")]
    lines.insert(future[-1] + 1 if future else 0, "from dataclasses import field\n")
    return "".join(lines)


class _PatchingLoader(importlib.machinery.SourceFileLoader):
    """Compiles the patched source; overriding get_code bypasses the cached .pyc of the original."""

    def get_code(self, fullname: str) -> CodeType:
        source = self.get_data(self.path).decode("utf-8")
        return compile(patch_source(source), self.path, "exec", dont_inherit=True)


class _VarModelFinder(importlib.abc.MetaPathFinder):
    """Finds only `lava.magma.compiler.var_model` and hands it to the patching loader."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname != PATCHED_MODULE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.origin is None:
            return None
        loader = _PatchingLoader(fullname, spec.origin)
        return importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader,
                                                      submodule_search_locations=None)


def ensure_lava() -> None:
    """Install the finder once (idempotent); it affects nothing but the one lava module."""
    if not any(isinstance(f, _VarModelFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _VarModelFinder())


LAVA_MP_MODULE = "lava.magma.runtime.message_infrastructure.multiprocessing"


def _prepare_start_method() -> None:
    """Let Lava's import-time `set_start_method('fork')` succeed.

    NOTE: anything that touched multiprocessing before (tqdm creates a lock) fixes the default context,
    and Lava's unforced call then raises. Unfixing a 'fork' context changes nothing; Lava cannot run
    under any other start method.
    """
    if LAVA_MP_MODULE in sys.modules:
        return
    method = multiprocessing.get_start_method(allow_none=True)
    if method == "fork":
        multiprocessing.set_start_method(None, force=True)
    elif method is not None:
        raise UnsupportedError(f"the Lava simulator needs the 'fork' multiprocessing start method, this process "
                               f"uses '{method}'", "run the simulation in a separate process")


def import_lava(module: str = "lava.lib.dl.netx") -> ModuleType:
    """Import a Lava module through the fix; a missing Lava is an UnsupportedError with the install hint."""
    ensure_lava()
    _prepare_start_method()
    try:
        # NOTE: lava-dl prints notices about optional packages (and torch warns about CUDA) on import;
        # none concern scadeploy, so they are swallowed to keep tables and --json output clean.
        logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
        with contextlib.redirect_stdout(io.StringIO()):
            return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        raise UnsupportedError(f"the Lava simulator cannot be imported ({exc.name} is missing)", INSTALL_HINT) from exc
