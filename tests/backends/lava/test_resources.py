"""Neuro-core planning: exact synapse counts at padded borders, and refusals that name the layer."""

from __future__ import annotations

import pytest
from lava_support import lowered

from scadeploy.backends.lava.net import INPUT
from scadeploy.backends.lava.process_graph import edge_matrix
from scadeploy.backends.lava.resources import check_fits, edge_synapses, plan_resources
from scadeploy.errors import TargetError
from scadeploy.targets.backend_options import LavaResources


@pytest.mark.parametrize("case", ["digits", "resnet"])
def test_synapse_counts_equal_the_connection_matrix(case):
    net, _, _ = lowered(case)
    shapes = {INPUT: net.input_shape} | {layer.name: layer.shape for layer in net.layers}
    for layer in net.layers:
        for edge in layer.edges:
            matrix = edge_matrix(edge, shapes[edge.source], layer.shape)
            synapses, fan_in = edge_synapses(edge, shapes[edge.source], layer.shape)
            assert synapses == matrix.nnz
            assert fan_in >= (matrix != 0).sum(1).max()


def test_plan_counts_cores_and_fits_the_default_chip():
    net, _, _ = lowered("digits")
    plan = plan_resources(net, LavaResources())
    assert [p.layer for p in plan.layers] == [layer.name for layer in net.layers]
    assert plan.cores == len(net.layers)  # every small layer fits one core
    check_fits(plan)
    assert "planning estimate" in plan.to_dict()["label"]


def test_a_layer_too_big_for_the_chip_is_named():
    net, _, _ = lowered("digits")
    limits = LavaResources(neurons_per_core=64, cores_per_chip=8)
    with pytest.raises(TargetError, match=r"layer 'features.sn2' needs 16 neuro cores for its 1,024 neurons"):
        check_fits(plan_resources(net, limits))


def test_a_model_too_big_in_total_names_the_largest_layers():
    net, _, _ = lowered("digits")
    limits = LavaResources(synapses_per_core=20_000, cores_per_chip=5)
    with pytest.raises(TargetError, match=r"needs \d+ neuro cores, the target has 5; largest: 'features.sn2'"):
        check_fits(plan_resources(net, limits))
