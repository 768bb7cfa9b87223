"""The Lava backend API: one error listing every problem, export with measured parity, target options."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from lava_support import CASES, folded_graph, frames

from scadeploy.backends.lava import export as lava
from scadeploy.backends.lava.netx import read_net
from scadeploy.errors import TargetError, UnsupportedError
from scadeploy.ir.graph import Op, PoolAttrs
from scadeploy.targets import Target, load_target
from scadeploy.targets.backend_options import LavaResources


def test_target_file_loads_with_its_limits():
    target = load_target("loihi2-sim")
    options = target.options
    assert target.backend == "lava" and options.weight_bits == 8 and options.state_bits == 24
    assert options.resources.cores_per_chip == 128 and options.parity_samples == 16


def test_every_problem_is_listed_in_one_error():
    graph = folded_graph("digits")
    nodes = []
    for n in graph.nodes:
        if n.name == "features.sn3":
            n = n.with_(attrs=dataclasses.replace(n.attrs, v_reset=None))
        nodes.append(n)
    soft = graph.with_nodes(nodes)
    with pytest.raises(UnsupportedError) as info:
        lava.check_supported(soft, load_target("loihi2-sim"))
    assert "soft reset" in info.value.message and "features.sn3" in info.value.message
    analog_pool = graph.with_nodes([n.with_(op=Op.MAXPOOL, attrs=PoolAttrs((1, 1), (1, 1))) if n.name == "features.sn1"
                                    else n for n in graph.nodes])
    problems = lava.lowering_problems(analog_pool)
    assert any("reads analog values" in p for p in problems)


def test_unknown_options_are_target_errors(tmp_path):
    path = tmp_path / "typo.toml"
    path.write_text('backend = "lava"\n[lava]\nweigth_bits = 8\n')
    with pytest.raises(TargetError, match="unknown \\[lava\\] options \\['weigth_bits'\\]") as info:
        load_target(str(path))
    assert "weight_bits" in info.value.hint


def test_a_model_that_does_not_fit_is_refused_before_writing(tmp_path):
    target = load_target("loihi2-sim")
    tiny = LavaResources(neurons_per_core=16, cores_per_chip=4)
    small = Target("tiny", "lava", "", dataclasses.replace(target.options, resources=tiny))
    with pytest.raises(TargetError, match="layer 'features.sn1' needs"):
        lava.check_supported(folded_graph("digits"), small)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("case", ["digits", "resnet"])
def test_export_writes_model_net_and_measures_parity(tmp_path, case):
    graph = folded_graph(case)
    section = lava.export(graph, load_target("loihi2-sim"), tmp_path, frames(CASES[case][2], 8))
    assert section["files"] == ["model.net"] and (tmp_path / "model.net").is_file()
    assert section["netx_loadable"] is (case == "digits")
    parity = section["parity"]
    assert parity["emulator_vs_quantized_ir"]["spike_mismatches"] == 0  # IF layers are exact
    assert parity["emulator_vs_quantized_ir"]["spikes_compared"] > 0
    assert 0.0 <= parity["emulator_vs_float"]["class_agreement"] <= 1.0
    assert section["resources"]["cores"] >= len(read_net(tmp_path / "model.net").layers)
    assert section["quantization"]["input_scale"] == 128.0


def test_export_scales_the_graded_input_to_the_samples(tmp_path):
    graph = folded_graph("digits")
    section = lava.export(graph, load_target("loihi2-sim"), tmp_path, 3.0 * torch.rand(4, 1, 8, 8) - 1.5)
    assert section["input"]["scale"] * 1.5 <= 255 < section["input"]["scale"] * 2 * 1.5

