"""Bad input on the own-model path: one `error:` line, exit 2, nothing left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from support import invoke

NETS = Path(__file__).with_name("nets.py")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("own_errors")
    shutil.copy(NETS, root / "nets_for_errors.py")
    from own_model.nets import OwnNet

    torch.manual_seed(0)
    torch.save(OwnNet().state_dict(), root / "w.pt")
    np.savez(root / "d.npz", x=np.random.default_rng(0).random((4, 1, 8, 8), dtype=np.float32), y=np.arange(4))
    return root


def _compile(files: Path, *args: str):
    out = files / "out"
    result = invoke("compile", str(files / "w.pt"), "-o", str(out), *args)
    assert not out.exists() or result.exit_code == 0
    assert not [p for p in files.iterdir() if p.name.startswith(".out.")], "a staging directory was left behind"
    return result


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


@pytest.mark.parametrize("factory, message", [
    ("no_such_module_xyz:build", "cannot import 'no_such_module_xyz'"),
    ("{root}/missing.py:build", "does not exist"),
    ("{root}/nets_for_errors.py:nothing", "has no attribute 'nothing'"),
    ("{root}/nets_for_errors.py:NOT_CALLABLE", "is a int, not callable"),
    ("{root}/nets_for_errors.py:build_broken", "raised RuntimeError: this factory always fails"),
    ("{root}/nets_for_errors.py:build_not_a_module", "returned a dict, not a torch nn.Module"),
    ("justaname", "is not MODULE:FACTORY"),
])
def test_bad_factories(files, factory, message):
    error = _error(_compile(files, "--model", factory.format(root=files), "--data", str(files / "d.npz")))
    assert message in error


def test_weights_that_do_not_fit(files):
    from own_model.nets import EventNet

    torch.save(EventNet().state_dict(), files / "other.pt")
    result = invoke("compile", str(files / "other.pt"), "--model", f"{files}/nets_for_errors.py:build",
                    "--data", str(files / "d.npz"), "-o", str(files / "out"))
    assert "do not fit the model" in _error(result)


def test_no_masked_channel_is_a_warning(files):
    result = _compile(files, "--model", f"{files}/nets_for_errors.py:build", "--data", str(files / "d.npz"),
                      "--force")
    assert result.exit_code == 0, result.output
    assert "warning: --masks auto found no masked channel" in result.stderr
    shutil.rmtree(files / "out")


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((4, 64), np.float32)}, "expected frames [N, C, H, W] or a sequence"),
    ({"x": np.array([["a"] * 4])}, "expected numbers"),
    ({"x": np.full((2, 1, 8, 8), np.nan, np.float32)}, "NaN or infinite"),
    ({"x": np.zeros((3, 1, 8, 8), np.float32), "y": np.arange(2)}, "3 samples but y holds 2 labels"),
    ({"x": np.zeros((3, 1, 8, 8), np.float32), "y": np.zeros(3, np.float32)}, "expected integer class labels"),
    ({"x": np.zeros((3, 2, 9, 9), np.float32)}, "the input shape does not fit the model at 'stem'"),
    ({"y": np.arange(3)}, "holds no 'x'"),
])
def test_bad_data_files(files, arrays, message):
    np.savez(files / "bad.npz", **arrays)
    error = _error(_compile(files, "--model", f"{files}/nets_for_errors.py:build", "--data", str(files / "bad.npz")))
    assert message in error


def test_sequence_with_time_second_is_refused(files):
    np.savez(files / "nt.npz", x=np.zeros((5, 4, 2, 8, 8), np.float32))
    error = _error(_compile(files, "--model", f"{files}/nets_for_errors.py:build_events", "--data",
                            str(files / "nt.npz"), "-T", "4"))
    assert "looks like [N, T, ...]" in error


def test_tampered_or_truncated_graph_files(files, tmp_path):
    out = tmp_path / "D"
    result = invoke("compile", str(files / "w.pt"), "--model", f"{files}/nets_for_errors.py:build",
                    "--data", str(files / "d.npz"), "-o", str(out))
    assert result.exit_code == 0, result.output
    tensors = out / "stripped.safetensors"
    blob = tensors.read_bytes()
    tensors.write_bytes(blob[: len(blob) // 2])
    assert "changed after compile" in _error(invoke("inspect", str(out)))
    tensors.write_bytes(blob)
    graph = json.loads((out / "stripped.graph.json").read_text())
    graph["nodes"][2]["attrs"]["out_channels"] = "many"
    (out / "stripped.graph.json").write_text(json.dumps(graph))
    assert "is malformed" in _error(invoke("benchmark", str(out), "-b", "1"))
    (out / "stripped.graph.json").write_text("{not json")
    assert "is not valid JSON" in _error(invoke("inspect", str(out)))


def test_masks_file_of_0_1_numbers_is_used_and_a_wrong_one_refused(files, tmp_path):
    masks = {"stem": torch.tensor([1, 0] * 4), "block.conv1": torch.ones(16, dtype=torch.int64)}
    torch.save(masks, tmp_path / "masks.pt")
    out = tmp_path / "D"
    result = invoke("compile", str(files / "w.pt"), "--model", f"{files}/nets_for_errors.py:build",
                    "--data", str(files / "d.npz"), "--masks", str(tmp_path / "masks.pt"), "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["masks"] == "given"
    assert {row["layer"]: row["masked"] for row in manifest["layers"]}["stem"] == 4
    torch.save({"nope": torch.ones(3)}, tmp_path / "bad.pt")
    result = invoke("compile", str(files / "w.pt"), "--model", f"{files}/nets_for_errors.py:build",
                    "--data", str(files / "d.npz"), "--masks", str(tmp_path / "bad.pt"), "-o", str(tmp_path / "E"))
    assert "mask 'nope' names no layer" in _error(result) and not (tmp_path / "E").exists()


def test_dotted_import_path_and_random_frames(files, tmp_path):
    """`pkg.mod:build` resolves like an import; without --data, --input-shape gives seeded random frames."""
    result = invoke("compile", str(files / "w.pt"), "--model", "own_model.nets:build", "--input-shape", "1,8,8",
                    "-T", "2", "-o", str(tmp_path / "D"), "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    assert manifest["timesteps"] == 2 and manifest["data"]["kind"] == "random"
    assert manifest["source"]["model"] == "own_model.nets:build"
    assert "needs --data" in _error(invoke("compile", str(files / "w.pt"), "--model", "own_model.nets:build",
                                          "-o", str(tmp_path / "E")))
