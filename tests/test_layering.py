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
    assert "5 kept, 0 broken" in result.stdout


def test_a_forbidden_import_breaks_the_layering(tmp_path):
    shutil.copytree(ROOT / "scadeploy", tmp_path / "scadeploy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    neuron = tmp_path / "scadeploy" / "ir" / "neuron.py"
    neuron.write_text(neuron.read_text() + "\nfrom scadeploy.backends.torch_ref import run_graph  # noqa\n")
    result = _lint(tmp_path)
    assert result.returncode != 0
    assert "ir imports no backend" in result.stdout and "BROKEN" in result.stdout
