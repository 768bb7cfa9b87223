"""End to end: spikingjelly SEW ResNets (ADD, AND, IAND) compiled for onnx-cpu, loihi2-sim and nir, with the
parity every target measured recorded in the manifest."""

from __future__ import annotations

import json

import pytest
from sew_support import CONNECTIONS, frames, narrow_sew_resnet

from scadeploy.compiler import compile_model, write_artifacts

TARGETS = ("onnx-cpu", "loihi2-sim", "nir")


@pytest.mark.parametrize("cnf", CONNECTIONS)
def test_sew_resnet_compiles_for_every_target_with_measured_parity(tmp_path, cnf: str) -> None:
    x = frames((3, 16, 16), 8)
    result = compile_model(narrow_sew_resnet(cnf), None, x, timesteps=4)
    write_artifacts(result, tmp_path / "out", TARGETS)
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["refused"] == {} and set(manifest["targets"]) == set(TARGETS)
    assert manifest["parity"]["trace_vs_model"]["spike_mismatches"] == 0
    assert manifest["parity"]["stripped_vs_masked"]["exact"]

    onnx = manifest["targets"]["onnx-cpu"]["parity"]
    assert onnx["passed"] and onnx["spike_mismatches"] == 0 and onnx["spikes_compared"] > 0

    lava = manifest["targets"]["loihi2-sim"]["parity"]
    assert lava["exact"] and lava["approximate_layers"] == []
    assert lava["emulator_vs_quantized_ir"]["spike_mismatches"] == 0
    assert lava["emulator_vs_quantized_ir"]["spikes_compared"] > 0

    nir = manifest["targets"]["nir"]["parity"]
    assert nir["spike_mismatches"] == 0 and nir["neuron_layers_compared"] == nir["neuron_layers"] > 0
    assert nir["max_logit_diff"] < 1e-5
