"""The package layering (pyproject's import-linter contracts) holds, and the check really catches a breach."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_layering_contracts_hold():
    result = _lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 kept, 0 broken" in result.stdout


def test_a_forbidden_import_breaks_the_layering(tmp_path):
    shutil.copytree(ROOT / "scadeploy", tmp_path / "scadeploy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    neuron = tmp_path / "scadeploy" / "ir" / "neuron.py"
    neuron.write_text(neuron.read_text() + "\nfrom scadeploy.backends.torch_ref import run_graph  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "one layering" in result.stdout and "BROKEN" in result.stdout


def _import_cycles(graph) -> list[list[str]]:
    """Every cycle of direct imports between modules (function-level imports included)."""
    import networkx as nx

    edges = nx.DiGraph()
    for module in graph.modules:
        edges.add_edges_from((module, imported) for imported in graph.find_modules_directly_imported_by(module))
    return list(nx.simple_cycles(edges))


def test_no_import_cycles_between_files():
    import grimp

    assert _import_cycles(grimp.build_graph("scadeploy")) == []


def test_the_cycle_check_sees_a_cycle(tmp_path):
    import grimp

    pkg = tmp_path / "cyclic_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from cyclic_pkg import b  # noqa\n")
    (pkg / "b.py").write_text("from cyclic_pkg import a  # noqa\n")
    sys.path.insert(0, str(tmp_path))
    try:
        cycles = _import_cycles(grimp.build_graph("cyclic_pkg", cache_dir=None))
    finally:
        sys.path.remove(str(tmp_path))
    assert sorted(map(sorted, cycles)) == [["cyclic_pkg.a", "cyclic_pkg.b"]]
