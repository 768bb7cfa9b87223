"""The run-time Python 3.11 fix for lava-nc: source patch, finder, and real imports in fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from scadeploy.backends.lava.compat import PATCHED_MODULE, patch_source

SOURCE = textwrap.dedent('''\
    from __future__ import annotations
    from dataclasses import dataclass

    @dataclass
    class ByteEncoder:
        base: int = 0

    @dataclass
    class CoreEncoder:
        x: ByteEncoder = ByteEncoder()
        y: ByteEncoder = ByteEncoder()
''')


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=180)


def test_patch_turns_mutable_defaults_into_factories():
    patched = patch_source(SOURCE)
    assert "ByteEncoder()" not in patched
    assert patched.count("field(default_factory=ByteEncoder)") == 2
    assert patched.splitlines()[0] == "from __future__ import annotations"  # the future import stays first
    namespace: dict = {}
    exec(compile(patched, "<patched>", "exec"), namespace)
    a, b = namespace["CoreEncoder"](), namespace["CoreEncoder"]()
    assert a.x is not b.x


def test_patch_leaves_other_sources_alone():
    assert patch_source("x = 1\n") == "x = 1\n"


def test_netx_imports_through_the_fix_in_a_fresh_interpreter():
    result = _run(f"""
        import multiprocessing, sys
        import scadeploy.backends.lava.compat as compat
        assert "lava" not in sys.modules                 # importing scadeploy never imports Lava
        compat.ensure_lava(); compat.ensure_lava()        # idempotent
        assert sum(isinstance(f, compat._VarModelFinder) for f in sys.meta_path) == 1
        multiprocessing.RLock()                           # fixes the default context, as tqdm does
        netx = compat.import_lava("lava.lib.dl.netx")
        var_model = sys.modules["{PATCHED_MODULE}"]
        a, b = var_model.CoreEncoder(), var_model.CoreEncoder()
        assert a.x is not b.x and hasattr(netx.hdf5, "Network")
        print("ok", multiprocessing.get_start_method())
    """)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split()[-2:] == ["ok", "fork"]


def test_plain_import_fails_without_the_fix():
    result = _run("import lava.magma.compiler.var_model")
    assert result.returncode != 0 and "mutable default" in result.stderr
