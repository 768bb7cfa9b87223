"""The layout names every file a compile writes, and the manifest of a real compile reads back unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import compiled_digits

from scadeploy.artifact import layout
from scadeploy.artifact.layout import GRAPHS, Layout, graph_file, is_file_name, tensors_file
from scadeploy.artifact.manifest import Manifest, read_manifest

NAMED = {layout.MANIFEST, layout.STRIPPED_CHECKPOINT, layout.INPUTS, layout.BENCHMARK_PLOT, layout.ONNX_SEQUENCE,
         layout.ONNX_STEP, layout.OPENVINO_MODEL, layout.OPENVINO_WEIGHTS, layout.OPENVINO_CONFIG, layout.LAVA_NET,
         layout.NIR_MODEL, *map(graph_file, GRAPHS), *map(tensors_file, GRAPHS)}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory) -> Path:
    return compiled_digits(tmp_path_factory.mktemp("layout"), ("onnx-cpu", "loihi2-sim"))[1]


def test_every_file_of_a_compiled_directory_is_named_in_the_layout(compiled):
    assert {p.name for p in compiled.iterdir()} <= NAMED
    manifest = read_manifest(compiled)
    listed = {name for target in manifest.targets.values() for name in target.files} | set(manifest.graphs.values())
    assert listed == {layout.ONNX_SEQUENCE, layout.ONNX_STEP, layout.LAVA_NET, *map(graph_file, GRAPHS)}
    assert all((compiled / name).is_file() for name in listed) and Layout(compiled).stripped_checkpoint.is_file()


def test_a_compiled_manifest_reads_back_to_the_same_json(compiled):
    written = json.loads(Layout(compiled).manifest.read_text())
    assert written["format"] == "scadeploy.compiled" and written["version"] == 1
    assert Manifest.from_dict(written).to_dict() == written


@pytest.mark.parametrize("name, inside", [("model.onnx", True), ("", False), (".", False), ("..", False),
                                          ("../model.onnx", False), ("sub/model.onnx", False), (3, False)])
def test_only_plain_file_names_are_inside_the_directory(name, inside):
    assert is_file_name(name) is inside


def test_layout_paths():
    root = Path("/d")
    assert Layout(root).manifest == root / "manifest.json" and Layout(root).file("model.net") == root / "model.net"
    assert graph_file("stripped") == "stripped.graph.json" and tensors_file("masked") == "masked.safetensors"
