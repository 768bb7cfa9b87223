"""Target files: by name or path, with clear errors for unknown, malformed or foreign ones."""

from __future__ import annotations

import pytest
from support import invoke

from scadeploy.errors import TargetError
from scadeploy.targets import available_targets, load_target


def test_shipped_targets_load() -> None:
    names = available_targets()
    assert "onnx-cpu" in names
    for name in names:
        target = load_target(name)
        assert target.backend in ("onnx", "lava") and target.description


def test_unknown_target_lists_the_known_ones() -> None:
    with pytest.raises(TargetError, match="unknown target 'tpu'") as info:
        load_target("tpu")
    assert "onnx-cpu" in info.value.hint


def test_malformed_and_foreign_files(tmp_path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("backend = [unclosed")
    with pytest.raises(TargetError, match="not valid TOML"):
        load_target(str(bad))
    foreign = tmp_path / "foreign.toml"
    foreign.write_text('backend = "tensorrt"')
    with pytest.raises(TargetError, match="names backend 'tensorrt'"):
        load_target(str(foreign))


def test_targets_command_lists_every_target() -> None:
    result = invoke("targets")
    assert result.exit_code == 0
    assert all(name in result.stdout for name in available_targets())
