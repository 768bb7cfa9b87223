"""Bring your own model: a network outside scadeploy.models, compiled from the CLI and used from DIR alone.

The network file is copied to a temporary directory, compiled by file path and by import path, then
deleted (and dropped from sys.modules and sys.path) before inspect, benchmark and simulate run.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from support import invoke

from scadeploy.data import load_dataset
from scadeploy.data.events import frames_to_events
from scadeploy.models import randomize_batchnorm

NETS = Path(__file__).with_name("nets.py")
MODULE = "user_nets_for_scadeploy"


def _load_nets(directory: Path):
    """Import the copied nets file as a user would have it: a module on their path."""
    import importlib

    sys.path.insert(0, str(directory))
    try:
        return importlib.import_module(MODULE)
    finally:
        sys.path.remove(str(directory))


def _prune(model: torch.nn.Module, keep: float, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Zero random channels SCA-style (conv filter, BN gamma and beta) in every conv followed by a BN."""
    modules = dict(model.named_modules())
    masks = {}
    with torch.no_grad():
        for name, module in modules.items():
            bn = modules.get(name.replace("conv", "bn") if "conv" in name else f"{name}_bn")
            if not isinstance(module, torch.nn.Conv2d) or not isinstance(bn, torch.nn.BatchNorm2d) or bn is module:
                continue
            keep_mask = torch.rand(module.out_channels, generator=generator) < keep
            keep_mask[0] = True
            module.weight[~keep_mask] = 0
            bn.weight[~keep_mask] = 0
            bn.bias[~keep_mask] = 0
            masks[name] = keep_mask
    return masks


def _user_files(root: Path, factory: str, events: bool) -> tuple[Path, Path, dict]:
    """The user's weights (plain state_dict) and data (.npz with labels), as they would save them."""
    user = root / "user"
    user.mkdir()
    shutil.copy(NETS, user / f"{MODULE}.py")
    nets = _load_nets(user)
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = randomize_batchnorm(getattr(nets, factory)(), generator).eval()
    masks = _prune(model, 0.5, generator)
    torch.save(model.state_dict(), root / "w.pt")
    images, labels = load_dataset("digits", train=False).tensors[:2]
    x = frames_to_events(images[:24], 4) if events else images[:24] * 2
    np.savez(root / "d.npz", x=x.numpy(), y=labels[:24].numpy())
    return user, root / "d.npz", masks


def _forget(user: Path) -> None:
    """The user's source is gone: deleted, not importable, not cached."""
    shutil.rmtree(user)
    sys.modules.pop(MODULE, None)
    for name in [n for n in sys.modules if n.startswith("scadeploy_user_")]:
        sys.modules.pop(name)


@pytest.fixture(scope="module")
def own_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("own")
    user, data, masks = _user_files(root, "build", events=False)
    result = invoke("compile", str(root / "w.pt"), "--model", f"{user / MODULE}.py:build", "--masks", "auto",
                    "--data", str(data), "-t", "onnx-cpu", "-t", "loihi2-sim", "-o", str(root / "D"), "--json")
    assert result.exit_code == 0, result.output
    _forget(user)
    return root / "D", json.loads(result.stdout), masks


def test_compile_infers_the_masks_and_checks_the_trace(own_model):
    out, manifest, masks = own_model
    assert manifest["masks"] == "inferred from zeroed weights"
    masked = {row["layer"]: row["masked"] for row in manifest["layers"]}
    for name, mask in masks.items():
        assert masked[name] == int((~mask).sum()), name
    trace = manifest["parity"]["trace_vs_model"]
    assert trace["passed"] and trace["spike_mismatches"] == 0 and trace["neuron_layers_compared"] == 3
    assert manifest["parity"]["stripped_vs_masked"]["exact"]
    assert manifest["data"]["kind"] == "file" and manifest["data"]["labels"] and manifest["data"]["samples"] == 24
    assert manifest["targets"]["onnx-cpu"]["parity"]["passed"]
    assert manifest["targets"]["loihi2-sim"]["parity"]["emulator_vs_quantized_ir"]["spike_mismatches"] == 0
    assert manifest["params"]["after"] < manifest["params"]["before"]


def test_inspect_benchmark_and_emulator_need_only_the_directory(own_model):
    out, _, _ = own_model
    result = invoke("inspect", str(out), "--graph")
    assert result.exit_code == 0, result.output
    assert "block.conv1" in result.stdout and "head.mean" not in result.stdout
    result = invoke("benchmark", str(out), "-b", "1", "--warmup", "0", "--repeats", "2", "--threads", "1", "--json")
    assert result.exit_code == 0, result.output
    bench = json.loads(result.stdout)
    assert max(bench["agreement"].values()) <= 1e-4, bench["agreement"]
    assert {t["runner"] for t in bench["timings"]} >= {"onnx:stripped", "spikingjelly:masked"}
    result = invoke("simulate", str(out), "--backend", "emulator", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["samples"] == 24 and report["accuracy"] is not None and report["agreement_with_float"] > 0.5


@pytest.mark.lava
def test_per_step_head_on_lava_is_bit_exact_against_the_emulator(own_model):
    out, _, _ = own_model
    result = invoke("simulate", str(out), "--backend", "lava", "--samples", "4", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["emulator_spike_mismatches"] == 0


@pytest.fixture(scope="module")
def event_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("events")
    user, data, _ = _user_files(root, "build_events", events=True)
    result = invoke("compile", str(root / "w.pt"), "--model", f"{user / MODULE}.py:build_events",
                    "--data", str(data), "-t", "onnx-cpu", "-t", "loihi2-sim", "-o", str(root / "D"), "--json")
    assert result.exit_code == 0, result.output
    _forget(user)
    return root / "D", json.loads(result.stdout)


def test_event_input_compiles_to_both_targets(event_model):
    out, manifest = event_model
    assert manifest["encoding"] == "sequence" and manifest["data"]["layout"] == "sequence"
    assert manifest["parity"]["trace_vs_model"]["passed"]
    assert manifest["targets"]["onnx-cpu"]["parity"]["passed"]
    assert manifest["targets"]["onnx-cpu"]["parity"]["spike_mismatches"] == 0
    lava = manifest["targets"]["loihi2-sim"]
    assert lava["input"]["kind"] == "binary spike events" and lava["input"]["message_bits"] == 0
    assert lava["parity"]["emulator_vs_quantized_ir"]["spike_mismatches"] == 0
    result = invoke("simulate", str(out), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    first = report["synops_per_sample"]["if1"]
    assert first["macs"] == 0 and first["acs"] > 0  # binary events are accumulates, not multiplies
    result = invoke("benchmark", str(out), "-b", "3", "--warmup", "0", "--repeats", "1", "--threads", "1",
                    "-r", "onnx:stripped", "-r", "onnx-step", "-r", "spikingjelly:masked", "--json")
    assert result.exit_code == 0, result.output
    bench = json.loads(result.stdout)
    assert {t["batch_size"] for t in bench["timings"]} == {3}
    assert max(bench["agreement"].values()) <= 1e-4, bench["agreement"]


@pytest.mark.lava
def test_event_input_on_lava_matches_the_emulator_spike_for_spike(event_model):
    out, _ = event_model
    result = invoke("simulate", str(out), "--backend", "lava", "--samples", "4", "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["emulator_spike_mismatches"] == 0
