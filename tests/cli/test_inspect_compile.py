"""`scadeploy inspect` and `scadeploy compile` end to end, including their error behaviour."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from support import invoke, write_checkpoint

from scadeploy.frontends.checkpoint import load_checkpoint
from scadeploy.models import build_model


def run_subprocess(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "scadeploy", *args], capture_output=True, text=True, timeout=300)


def scadeploy(*args: str):
    result = invoke(*args)
    result.returncode = result.exit_code
    return result


def test_inspect_json(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "d.pt", keep=0.5)
    result = scadeploy("inspect", str(path), "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    rows = {r["layer"]: r for r in info["layers"]}
    assert rows["features.conv1"]["channels_before"] == 16 and rows["features.conv1"]["channels_after"] == 8
    assert info["params"]["after"] < info["params"]["before"]


def test_compile_writes_a_valid_stripped_checkpoint(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "d.pt", keep=0.3)
    out = tmp_path / "out"
    result = scadeploy("compile", str(path), "-o", str(out), "--json")
    assert result.returncode == 0, result.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parity"]["stripped_vs_masked"]["exact"] is True
    assert len(manifest["source"]["sha256"]) == 64
    stripped = load_checkpoint(out / "stripped.pt")
    model = stripped.build()
    assert sum(p.numel() for p in model.parameters()) == manifest["params"]["after"]
    original = load_checkpoint(path).build()
    x = torch.rand(4, 4, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(model(x), original(x), atol=1e-5)


def test_compile_refuses_existing_dir_without_force(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "d.pt")
    out = tmp_path / "out"
    out.mkdir()
    result = scadeploy("compile", str(path), "-o", str(out))
    assert result.returncode == 2 and "already exists" in result.stderr and "--force" in result.stderr
    assert list(out.iterdir()) == []
    assert scadeploy("compile", str(path), "-o", str(out), "--force").returncode == 0
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize("kind", ["corrupt", "foreign", "pickled", "mask_shape", "unknown_target", "missing"])
def test_bad_input_gives_one_line_and_exit_2(tmp_path, kind: str) -> None:
    path = write_checkpoint(tmp_path / "d.pt")
    extra: list[str] = []
    if kind == "corrupt":
        path.write_bytes(b"not a zip at all")
    elif kind == "foreign":
        torch.save(build_model("digits").state_dict(), path)
    elif kind == "pickled":
        torch.save({"format": "scadeploy.checkpoint", "x": object.__new__(torch.nn.Identity)}, path)
    elif kind == "mask_shape":
        raw = torch.load(path, weights_only=True)
        raw["masks"]["features.conv2"] = torch.ones(3, dtype=torch.bool)
        torch.save(raw, path)
    elif kind == "unknown_target":
        extra = ["--target", "tpu-v9"]
    elif kind == "missing":
        path = tmp_path / "missing.pt"
    out = tmp_path / "out"
    result = scadeploy("compile", str(path), "-o", str(out), *extra)
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def test_real_process_exit_code_and_stderr(tmp_path) -> None:
    result = run_subprocess("inspect", str(tmp_path / "missing.pt"))
    assert result.returncode == 2
    assert result.stderr.startswith("error: checkpoint") and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unsupported_layer_exit_2(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "d.pt")
    raw = torch.load(path, weights_only=True)
    raw["arch"] = {"name": "lenet"}
    torch.save(raw, path)
    result = scadeploy("inspect", str(path))
    assert result.returncode == 2 and "unknown model 'lenet'" in result.stderr
