"""`scadeploy compile model.nir`: spikingjelly's own NIR export stripped and deployed; bad NIR refused."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from spikingjelly.activation_based import functional, layer, neuron
from support import invoke
from torch import nn

nir = pytest.importorskip("nir")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A conv SNN with SCA-zeroed channels (filter and bias), written by spikingjelly's export_to_nir."""
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(1, 16, 3, padding=1), neuron.IFNode(), layer.Conv2d(16, 32, 3, padding=1),
                        neuron.LIFNode(tau=2.0), layer.AvgPool2d(2, 2), layer.Flatten(), layer.Linear(32 * 16, 10))
    zeroed = {}
    with torch.no_grad():
        for index in (0, 2):
            conv = net[index]
            dead = torch.arange(conv.out_channels) % 3 == 0
            conv.weight[dead] = 0
            conv.bias[dead] = 0
            conv.weight.mul_(3)
            zeroed[f"_{index}"] = int(dead.sum())
    functional.set_step_mode(net, "m")
    path = tmp_path_factory.mktemp("nir") / "exported.nir"
    export_to_nir(net, torch.rand(4, 2, 1, 8, 8), save_path=path)
    return path, zeroed


def test_spikingjelly_export_compiles_to_onnx_and_lava_with_its_zeroed_channels_removed(exported, tmp_path):
    path, zeroed = exported
    out = tmp_path / "D"
    result = invoke("compile", str(path), "-T", "4", "--data", "digits", "-t", "onnx-cpu", "-t", "loihi2-sim",
                    "-o", str(out), "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.stdout)
    removed = {row["layer"]: row["channels_before"] - row["channels_after"] for row in manifest["layers"]}
    assert {k: removed[k] for k in zeroed} == zeroed
    assert manifest["masks"] == "inferred from zeroed weights"
    assert manifest["source"]["kind"] == "nir" and manifest["source"]["dt"] == pytest.approx(1e-4)
    peer = manifest["source"]["nir_vs_spikingjelly"]
    assert peer["spike_mismatches"] == 0 and peer["neuron_layers_compared"] == 2
    assert manifest["parity"]["stripped_vs_masked"]["exact"]
    assert manifest["targets"]["onnx-cpu"]["parity"]["passed"]
    lava = manifest["targets"]["loihi2-sim"]["parity"]
    assert not lava["exact"] and lava["approximate_layers"] == ["_3"]  # the LIF leak; the IF layer is exact
    result = invoke("simulate", str(out), "--samples", "20", "--json")
    assert result.exit_code == 0, result.output


def test_round_trip_through_the_nir_target(exported, tmp_path):
    """compile -t nir writes a NIR file that compiles again to the same stripped network."""
    path, _ = exported
    first = tmp_path / "first"
    result = invoke("compile", str(path), "--data", "digits", "-t", "nir", "-o", str(first), "--json")
    assert result.exit_code == 0, result.output
    section = json.loads(result.stdout)["targets"]["nir"]
    assert section["parity"]["spike_mismatches"] == 0 and section["dt"] == pytest.approx(1e-4)
    result = invoke("compile", str(first / "model.nir"), "--data", "digits", "-o", str(tmp_path / "second"),
                    "--json")
    assert result.exit_code == 0, result.output
    again = json.loads(result.stdout)
    assert again["params"]["before"] == again["params"]["after"] == json.loads(
        (first / "manifest.json").read_text())["params"]["after"]


def _error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def _graph(*middle, edges=None, shape=(1, 8, 8)):
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)}), **dict(middle),
             "output": nir.Output(output_type={"output": np.array([10])})}
    names = list(nodes)
    return nir.NIRGraph(nodes, edges or list(zip(names, names[1:], strict=False)), type_check=False)


def _affine(n_in: int, n_out: int = 10):
    return nir.Affine(weight=np.ones((n_out, n_in), np.float32), bias=np.zeros(n_out, np.float32))


def _flatten(shape=(1, 8, 8)):
    return nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)


def _if(shape):
    return nir.IF(r=np.full(shape, 1e4), v_threshold=np.ones(shape), v_reset=np.zeros(shape))


@pytest.mark.parametrize("case, message", [
    ("not-hdf5", "is not a readable NIR file"),
    ("unknown-node", "node type CubaLI is not supported"),
    ("shapes", "shapes do not fit"),
    ("soft-reset", "v_reset is not a finite value (a soft reset?)"),
    ("cycle", "has a cycle"),
    ("scaled-if", "is not 1/dt"),
])
def test_bad_nir_input_is_one_error_line(tmp_path, case: str, message: str):
    path = tmp_path / "bad.nir"
    if case == "not-hdf5":
        path.write_bytes(b"this is not HDF5")
    elif case == "unknown-node":
        nir.write(path, _graph(("flat", _flatten()), ("li", nir.CubaLI(tau_syn=np.ones(64), tau_mem=np.ones(64),
                                                                          r=np.ones(64), v_leak=np.zeros(64))),
                               ("fc", _affine(64))))
    elif case == "shapes":
        nir.write(path, _graph(("flat", _flatten()), ("fc", _affine(65))))
    elif case == "soft-reset":
        nir.write(path, _graph(("flat", _flatten()), ("fc", _affine(64)), ("sn", _if(10))))
        with h5py.File(path, "r+") as f:
            f["node/nodes/sn/v_reset"][...] = np.nan
    elif case == "cycle":
        nir.write(path, _graph(("flat", _flatten()), ("fc", _affine(64, 64)), ("sn", _if(64)), ("fc2", _affine(64)),
                               edges=[("input", "flat"), ("flat", "fc"), ("fc", "sn"), ("sn", "fc"), ("sn", "fc2"),
                                      ("fc2", "output")]))
    else:
        scaled = nir.IF(r=np.full(10, 3.0), v_threshold=np.ones(10), v_reset=np.zeros(10))
        graph = _graph(("flat", _flatten()), ("fc", _affine(64)), ("sn", scaled))
        graph.metadata["dt"] = 1e-4
        nir.write(path, graph)
    out = tmp_path / "out"
    assert message in _error(invoke("compile", str(path), "--data", "digits", "-o", str(out)))
    assert not out.exists()
