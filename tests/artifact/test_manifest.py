"""The manifest: written and read back to an equal Manifest, every malformed field one clear error naming it,
foreign and newer manifests refused, and the `refused` section named when its files are asked for."""

from __future__ import annotations

import copy
import json
from dataclasses import replace

import pytest

from scadeploy.artifact.directory import open_compiled
from scadeploy.artifact.manifest import FORMAT, VERSION, Manifest, read_manifest, write_manifest
from scadeploy.errors import ArtifactError
from scadeploy.ir.graph import Encoding

LAVA = {"backend": "lava", "reason": "the Lava backend cannot lower the model: soft reset", "hint": "use v_reset=0"}
ONNX = {"backend": "onnx", "files": ["model.onnx", "model.step.onnx"], "parity": {"passed": True}, "options": {}}
ROW = {"layer": "conv1", "op": "conv2d", "channels_before": 8, "channels_after": 4, "masked": 4, "params_before": 80,
       "params_after": 40, "dense_macs_before": 4608, "dense_macs_after": 2304}


def document() -> dict:
    """A manifest as `scadeploy compile` writes it: one target compiled, one refused."""
    return {
        "format": FORMAT, "version": VERSION, "scadeploy": "0.1.0", "created": "2025-01-01T00:00:00+00:00",
        "source": {"kind": "checkpoint", "path": "/data/d.pt", "sha256": "ab" * 32, "arch": {"name": "digits"},
                   "meta": {"dataset": "digits"}},
        "data": {"kind": "builtin", "name": "digits", "label": "digits test split", "layout": "frames",
                 "samples": 450, "sample_shape": [1, 8, 8], "labels": True},
        "timesteps": 4, "encoding": "direct", "input_shape": [1, 8, 8], "output_shape": [10],
        "graphs": {"stripped": "stripped.graph.json", "masked": "masked.graph.json"},
        "masks": "given", "layers": [ROW], "params": {"before": 100, "after": 60},
        "dense_macs_per_step": {"before": 5000, "after": 2700},
        "kept_masked_channels": [{"layer": "conv2", "channel": 3, "reason": "read by a residual add"}],
        "parity": {"stripped_vs_masked": {"exact": True, "samples": 16, "inputs": "digits test split"}},
        "targets": {"onnx-cpu": ONNX}, "refused": {"loihi2-sim": LAVA},
    }


def _write(tmp_path, manifest: dict) -> str:
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return str(tmp_path)


def test_to_dict_writes_what_from_dict_reads():
    manifest = Manifest.from_dict(document())
    assert manifest.to_dict() == document()
    assert manifest.model.encoding is Encoding.DIRECT and manifest.model.input_shape == (1, 8, 8)
    assert manifest.targets["onnx-cpu"].files == ("model.onnx", "model.step.onnx")
    assert manifest.costs.layers[0].channels_after == 4 and manifest.costs.params.after == 60
    assert manifest.kept_masked_channels[0].channel == 3 and manifest.data_label == "digits test split"


def test_write_then_read_is_a_round_trip(tmp_path):
    manifest = replace(Manifest.from_dict(document()), recommended_runtime={"by_batch_size": {}})
    path = write_manifest(tmp_path, manifest)
    assert path == tmp_path / "manifest.json" and read_manifest(tmp_path) == manifest
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]  # no temporary file left


def test_data_sources_of_every_kind_round_trip():
    sources = [{"kind": "file", "path": "/d/rec.npz", "sha256": "cd" * 32, "label": "rec.npz",
                "events": {"sensor_size": [34, 34, 2], "timesteps": 4, "recordings": 3}},
               {"kind": "compiled", "file": "inputs.npz", "label": "the inputs given to compile", "labels": False},
               {"kind": "random", "shape": [1, 8, 8], "seed": 0, "samples": 16},
               {"kind": "builtin", "name": "digits", "data_dir": "/data"}]
    for source in sources:
        manifest = Manifest.from_dict(document() | {"data": source})
        assert manifest.to_dict()["data"] == source
    assert Manifest.from_dict(document() | {"data": sources[0]}).data.sensor_size == (34, 34, 2)


def test_a_manifest_written_before_the_format_was_versioned_reads_as_version_1(tmp_path):
    old = {k: v for k, v in document().items() if k not in ("format", "version", "refused")}
    manifest = read_manifest(_write(tmp_path, old))
    assert manifest.refused == {} and manifest == replace(Manifest.from_dict(document()), refused={})


@pytest.mark.parametrize("change, message, hint", [
    ({"version": VERSION + 1}, f"has manifest version {VERSION + 1}, this scadeploy reads version {VERSION}",
     "upgrade scadeploy"),
    ({"format": "other.tool"}, f"is not a scadeploy manifest (no format '{FORMAT}')", "scadeploy compile"),
    ({"format": None, "version": None, "scadeploy": None}, "is not a scadeploy manifest", "scadeploy compile"),
    ({"version": "1"}, "is malformed: version must be a positive integer", "re-run scadeploy compile"),
    ({"version": True}, "is malformed: version must be a positive integer", "re-run scadeploy compile"),
])
def test_foreign_and_newer_manifests_are_one_error_that_says_what_to_do(tmp_path, change, message, hint):
    manifest = {k: v for k, v in (document() | change).items() if v is not None}
    with pytest.raises(ArtifactError) as info:
        read_manifest(_write(tmp_path, manifest))
    assert message in info.value.message and hint in info.value.hint


def test_missing_corrupt_and_non_object_manifests(tmp_path):
    with pytest.raises(ArtifactError, match="has no manifest.json"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ArtifactError, match="is not valid JSON"):
        read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[]")
    with pytest.raises(ArtifactError, match="holds a list, expected an object"):
        read_manifest(tmp_path)


def _set(path: str, value: object) -> dict:
    """The document with the field at dotted `path` set to `value` (deleted when value is DELETE)."""
    manifest = copy.deepcopy(document())
    *parents, last = path.split(".")
    node = manifest
    for key in parents:
        node = node[key]
    if value is DELETE:
        del node[last]
    else:
        node[last] = value
    return manifest


class _Delete:
    """Marks a field to remove; its repr is stable so every test worker collects the same ids."""

    def __repr__(self) -> str:
        return "DELETE"


DELETE = _Delete()
MALFORMED = [
    ("extra", 1, "unknown field 'extra'"),
    ("timesteps", DELETE, "timesteps is missing"),
    ("timesteps", 0, "timesteps must be an integer >= 1"),
    ("encoding", "analog", "encoding must be one of direct, sequence"),
    ("input_shape", [], "input_shape must be a non-empty list of positive integers"),
    ("output_shape", [10.5], "output_shape must be a non-empty list of positive integers"),
    ("scadeploy", 1, "scadeploy must be a string"),
    ("masks", None, "masks must be a string"),
    ("source", [], "source must be an object"),
    ("source.path", 3, "source.path must be a string"),
    ("source.sha256", DELETE, "source.sha256 must be a string"),
    ("source.kind", None, "source.kind must be a string"),
    ("data", "digits", "data must be an object"),
    ("data.kind", "cloud", "data.kind must be one of builtin, file, compiled, random"),
    ("data.name", DELETE, "data.name is needed by a builtin data source"),
    ("data.label", 7, "data.label must be a string"),
    ("data.samples", -1, "data.samples must be an integer >= 0"),
    ("data.events", {"sensor_size": [34, 34]}, "data.events.sensor_size must be [W, H, P]"),
    ("data", {"kind": "random", "samples": 2**40}, "data.samples must be an integer >= 0 and <= 1048576"),
    ("graphs", {"stripped": "stripped.graph.json"}, "graphs must name exactly the stripped and masked graphs"),
    ("graphs.masked", "../masked.graph.json", "graphs.masked must be a file name inside the directory"),
    ("layers", {}, "layers must be a list"),
    ("layers", [ROW | {"masked": "4"}], "layers[0].masked must be an integer >= 0"),
    ("layers", [{"layer": "conv1"}], "layers[0] must be an object with the fields layer, op, channels_before"),
    ("params", {"before": 1}, "params must be an object with the fields before, after"),
    ("dense_macs_per_step.after", True, "dense_macs_per_step.after must be an integer >= 0"),
    ("kept_masked_channels", {}, "kept_masked_channels must be a list"),
    ("kept_masked_channels", [{"layer": "c", "channel": "3", "reason": "r"}],
     "kept_masked_channels[0].channel must be an integer >= 0"),
    ("parity", [], "parity must be an object"),
    ("parity.stripped_vs_masked", True, "parity.stripped_vs_masked must be an object"),
    ("targets", [], "targets must be an object"),
    ("targets.onnx-cpu", "model.onnx", "targets.onnx-cpu must be an object with a backend"),
    ("targets.onnx-cpu.backend", DELETE, "targets.onnx-cpu must be an object with a backend"),
    ("targets.onnx-cpu.files", DELETE, "targets.onnx-cpu.files must list file names inside the directory"),
    ("targets.onnx-cpu.files", [], "targets.onnx-cpu.files must list file names inside the directory"),
    ("targets.onnx-cpu.files", ["../../nowhere"], "targets.onnx-cpu.files must list file names inside the directory"),
    ("refused", [], "refused must be an object"),
    ("refused.loihi2-sim", "soft reset", "refused.loihi2-sim must be an object with a backend and a reason"),
    ("refused.loihi2-sim", {"backend": "lava"}, "with a backend and a reason"),
    ("refused.loihi2-sim", {"backend": "lava", "reason": 3}, "with a backend and a reason"),
    ("refused.loihi2-sim", LAVA | {"hint": None}, "with a backend and a reason"),
    ("refused.loihi2-sim", LAVA | {"why": "x"}, "with a backend and a reason"),
    ("refused.onnx-cpu", {"backend": "onnx", "reason": "x"}, "'onnx-cpu' is both in targets and in refused"),
    ("recommended_runtime", 3, "recommended_runtime must be an object"),
]


@pytest.mark.parametrize("path, value, message", MALFORMED, ids=[f"{p}={v!r}"[:40] for p, v, _ in MALFORMED])
def test_each_malformed_field_is_one_error_naming_it(tmp_path, path, value, message):
    with pytest.raises(ArtifactError, match="is malformed") as info:
        read_manifest(_write(tmp_path, _set(path, value)))
    assert message in info.value.message and info.value.hint == "re-run scadeploy compile"
    assert info.value.message.startswith(f"'{tmp_path / 'manifest.json'}' is malformed: ")


def test_refused_targets_read_back():
    manifest = Manifest.from_dict(document())
    assert manifest.refused_of() == manifest.refused_of("lava") == {"loihi2-sim": manifest.refused["loihi2-sim"]}
    assert manifest.refused["loihi2-sim"].hint == "use v_reset=0" and manifest.refused_of("onnx") == {}
    assert manifest.target_of("onnx")[0] == "onnx-cpu" and manifest.target_of("lava") is None


def test_the_files_of_a_refused_target_are_an_error_that_says_why(tmp_path):
    compiled = open_compiled(_write(tmp_path, document()))
    assert [p.name for p in compiled.target_files("onnx")] == ["model.onnx", "model.step.onnx"]
    assert compiled.target_files("nir") == []  # not asked for at compile
    with pytest.raises(ArtifactError) as info:
        compiled.target_files("lava")
    assert info.value.message.startswith("target 'loihi2-sim' was refused at compile")
    assert LAVA["reason"] in info.value.message and info.value.hint is None
