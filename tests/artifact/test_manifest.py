"""The manifest's `refused` section read back: checked like every other field, named when its files are asked for."""

from __future__ import annotations

import json

import pytest

from scadeploy.artifact.directory import open_compiled
from scadeploy.artifact.manifest import read_manifest, refused_targets
from scadeploy.errors import ArtifactError, DataError

LAVA = {"backend": "lava", "reason": "the Lava backend cannot lower the model: soft reset", "hint": "use v_reset=0"}


def _write(tmp_path, **manifest) -> str:
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return str(tmp_path)


def test_refused_targets_read_back(tmp_path):
    manifest = read_manifest(_write(tmp_path, targets={"onnx-cpu": {"backend": "onnx", "files": ["model.onnx"]}},
                                    refused={"loihi2-sim": LAVA}))
    assert refused_targets(manifest) == {"loihi2-sim": LAVA["reason"]}
    assert refused_targets(manifest, "onnx") == {}


def test_a_manifest_without_refused_means_none(tmp_path):
    assert refused_targets(read_manifest(_write(tmp_path, targets={}))) == {}


@pytest.mark.parametrize("refused, message", [
    ([], "refused must be an object"),
    ({"loihi2-sim": "soft reset"}, "refused.loihi2-sim must be an object with a backend and a reason"),
    ({"loihi2-sim": {"backend": "lava"}}, "with a backend and a reason"),
    ({"loihi2-sim": {"backend": "lava", "reason": 3}}, "with a backend and a reason"),
    ({"loihi2-sim": LAVA | {"hint": None}}, "with a backend and a reason"),
    ({"onnx-cpu": {"backend": "onnx", "reason": "x"}}, "'onnx-cpu' is both in targets and in refused"),
])
def test_malformed_refused_sections(tmp_path, refused, message):
    path = _write(tmp_path, targets={"onnx-cpu": {"backend": "onnx", "files": ["model.onnx"]}}, refused=refused)
    with pytest.raises(DataError, match="is malformed") as info:
        read_manifest(path)
    assert message in info.value.message


def test_the_files_of_a_refused_target_are_an_error_that_says_why(tmp_path):
    compiled = open_compiled(_write(tmp_path, targets={"onnx-cpu": {"backend": "onnx", "files": ["model.onnx"]}},
                                    refused={"loihi2-sim": LAVA}))
    assert [p.name for p in compiled.target_files("onnx")] == ["model.onnx"]
    assert compiled.target_files("nir") == []  # not asked for at compile
    with pytest.raises(ArtifactError) as info:
        compiled.target_files("lava")
    assert info.value.message.startswith("target 'loihi2-sim' was refused at compile")
    assert LAVA["reason"] in info.value.message and info.value.hint is None
