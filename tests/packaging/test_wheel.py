"""A wheel built from the checkout, installed into a fresh venv outside it, lists and loads every target."""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TARGET_FILES = sorted(p.stem for p in (ROOT / "scadeploy" / "targets").glob("*.toml"))


def _run(*args: str, cwd: Path) -> str:
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
def test_wheel_outside_the_checkout_has_every_target(tmp_path):
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT), cwd=tmp_path)
    (wheel,) = tmp_path.glob("scadeploy-*.whl")
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    python = env / "bin" / "python"
    # The fresh venv borrows the dependencies (torch, onnx, ...) from this one by a plain path entry: a
    # .pth line adds the directory without running its .pth files, so the checkout's editable hook stays out.
    site = Path(_run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
                .strip())
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run(str(python), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel), cwd=tmp_path)
    probe = ("import json, scadeploy, scadeploy.targets as t; "
             "print(json.dumps({'file': scadeploy.__file__, 'targets': t.available_targets(), "
             "'backends': [t.load_target(n).backend for n in t.available_targets()]}))")
    found = json.loads(_run(str(python), "-c", probe, cwd=tmp_path))
    assert Path(found["file"]).is_relative_to(env), found["file"]
    assert found["targets"] == TARGET_FILES and len(TARGET_FILES) >= 5
    listed = _run(str(env / "bin" / "scadeploy"), "targets", "--json", cwd=tmp_path)
    assert sorted(t["name"] for t in json.loads(listed)) == TARGET_FILES
