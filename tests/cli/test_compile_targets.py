"""A target that refuses the model costs only itself: `compile` writes the others and names the refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import invoke, write_checkpoint

TARGETS = ("-t", "onnx-cpu", "-t", "loihi2-sim", "-t", "nir")


@pytest.fixture(scope="module")
def soft_reset(tmp_path_factory) -> Path:
    """A digits checkpoint with soft-reset IF neurons: ONNX takes it; Lava and NIR reset to a value, so refuse it."""
    return write_checkpoint(tmp_path_factory.mktemp("soft") / "soft.pt", keep=0.5, v_reset=None)


@pytest.fixture(scope="module")
def partial(soft_reset, tmp_path_factory) -> tuple[Path, object]:
    out = tmp_path_factory.mktemp("partial") / "D"
    return out, invoke("compile", str(soft_reset), "-o", str(out), *TARGETS)


def test_refused_targets_cost_only_themselves(partial):
    out, result = partial
    assert result.exit_code == 0, result.output
    assert (out / "model.onnx").is_file() and not (out / "model.net").exists() and not (out / "model.nir").exists()
    manifest = json.loads((out / "manifest.json").read_text())
    assert list(manifest["targets"]) == ["onnx-cpu"] and manifest["targets"]["onnx-cpu"]["parity"]["passed"]
    refused = manifest["refused"]
    assert set(refused) == {"loihi2-sim", "nir"}
    assert refused["loihi2-sim"]["backend"] == "lava" and "soft reset" in refused["loihi2-sim"]["reason"]
    assert refused["nir"]["backend"] == "nir" and "soft reset" in refused["nir"]["reason"]
    lines = result.stdout.splitlines()
    for name in ("loihi2-sim", "nir"):
        line = next(line for line in lines if line.startswith(f"target {name}:"))
        assert "refused" in line and refused[name]["reason"] in line  # one line: the name and the reason
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".D.")]


def test_json_and_inspect_name_the_refusals(soft_reset, partial, tmp_path):
    result = invoke("compile", str(soft_reset), "-o", str(tmp_path / "J"), *TARGETS, "--json")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["refused"]) == {"loihi2-sim", "nir"}
    shown = invoke("inspect", str(partial[0]))
    assert shown.exit_code == 0, shown.output
    assert any(line.startswith("target nir: refused at compile") for line in shown.stdout.splitlines())


def test_every_target_refusing_writes_nothing(soft_reset, tmp_path):
    result = invoke("compile", str(soft_reset), "-o", str(tmp_path / "D"), "-t", "loihi2-sim", "-t", "nir")
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith("error: every requested target refused the model (loihi2-sim: ") and len(lines) <= 2
    assert "nir: the NIR backend cannot express the model" in lines[0] and "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_simulate_and_benchmark_say_the_target_was_refused(partial, tmp_path):
    out, _ = partial
    result = invoke("simulate", str(out))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: target 'loihi2-sim' was refused at compile")
    assert "soft reset" in lines[0]
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["refused"]["onnx-cpu"] = {"backend": "onnx", "reason": "the ONNX backend cannot lower: 'x' (op)"}
    del manifest["targets"]["onnx-cpu"]
    moved = tmp_path / "M"
    moved.mkdir()
    for path in out.iterdir():
        (moved / path.name).write_bytes(path.read_bytes())
    (moved / "manifest.json").write_text(json.dumps(manifest))
    bench = ["-b", "1", "--warmup", "0", "--repeats", "1", "--json"]
    refused = invoke("benchmark", str(moved), *bench, "-r", "onnx:stripped")
    assert refused.exit_code == 2 and "target 'onnx-cpu' was refused at compile" in refused.stderr
    assert invoke("benchmark", str(moved), *bench, "-r", "spikingjelly:stripped").exit_code == 0
