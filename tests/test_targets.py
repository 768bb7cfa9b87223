"""Target files: by name or path, with clear errors for unknown, malformed or foreign ones."""

from __future__ import annotations

import dataclasses
import json

import pytest
from support import invoke

from scadeploy.errors import TargetError
from scadeploy.targets import available_targets, load_target


def test_shipped_targets_load() -> None:
    names = available_targets()
    assert "onnx-cpu" in names
    for name in names:
        target = load_target(name)
        assert target.backend in ("onnx", "openvino", "lava", "nir") and target.description


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


def _lava_target(tmp_path, **options) -> str:
    lines = [f"{key} = {value}" for key, value in options.items()]
    path = tmp_path / "custom.toml"
    path.write_text('name = "custom"\nbackend = "lava"\n[lava]\n' + "\n".join(lines) + "\n")
    return str(path)


def test_weight_bits_above_what_lava_synapses_hold_are_refused(tmp_path) -> None:
    # 10 bits would give weights up to 1022, which lava-dl netx clips to 254 while the emulator
    # would use them unclipped: the two would silently disagree.
    with pytest.raises(TargetError, match=r"weight_bits must be an integer in 2\.\.8, got 10") as info:
        load_target(_lava_target(tmp_path, weight_bits=10))
    assert "Lava" in info.value.hint
    assert load_target(_lava_target(tmp_path, weight_bits=8)).options.weight_bits == 8


@pytest.mark.parametrize(("key", "too_large"), [("bias_bits", 14), ("threshold_bits", 18), ("state_bits", 25),
                                                 ("input_bits", 24)])
def test_every_bit_width_is_bounded_by_lava(tmp_path, key: str, too_large: int) -> None:
    with pytest.raises(TargetError, match=key):
        load_target(_lava_target(tmp_path, **{key: too_large}))


@pytest.mark.parametrize(("text", "expected"), [
    ('backend = "onnx"\nspeed = 3', "unknown keys"),
    ('backend = "onnx"\n[onnx]\nopset = true', "opset must be an integer"),
    ('backend = "onnx"\n[onnx]\nalign_channels = 100000', "align_channels"),
    ('backend = "onnx"\n[onnx]\nparity_tolerance = nan', "parity_tolerance"),
    ('backend = "onnx"\nname = 3', "name must be a string"),
    ('backend = "lava"\n[lava.resources]\nchips = 0', r"\[lava.resources\] chips must be an integer in 1\.\."),
    ('backend = "lava"\n[lava.resources]\ncores = 3', r"unknown \[lava.resources\] options \['cores'\]"),
    ('backend = "lava"\n[lava]\nresources = 3', r"\[lava\] resources must be a table, got 3"),
    ('backend = "lava"\n[lava]\nweight_bits = "eight"', r"weight_bits must be an integer in 2\.\.8, got 'eight'"),
    ('backend = "onnx"\nonnx = 3', r"\[onnx\] must be a table, got 3"),
])
def test_fields_are_checked_when_the_file_is_read(tmp_path, text: str, expected: str) -> None:
    path = tmp_path / "t.toml"
    path.write_text(text)
    with pytest.raises(TargetError, match=expected):
        load_target(str(path))


def test_compile_refuses_a_target_lava_cannot_hold(tmp_path) -> None:
    from support import write_checkpoint

    result = invoke("compile", str(write_checkpoint(tmp_path / "d.pt")), "-o", str(tmp_path / "out"),
                    "-t", _lava_target(tmp_path, weight_bits=10))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: target 'custom': [lava] weight_bits") and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


# One bad value per backend: each is refused when the file is read, in one line naming the field.
BAD_VALUES = [
    ("onnx", "graph_optimization_level = \"max\"",
     "[onnx] graph_optimization_level must be one of disable, basic, extended, all, got 'max'"),
    ("openvino", "inference_num_threads = -1",
     "[openvino] inference_num_threads must be an integer in 0..1024, got -1"),
    ("lava", "parity_samples = true", "[lava] parity_samples must be an integer in 1..100000, got True"),
    ("nir", "dt = 2.0", "[nir] dt must be a finite number in (0, 1], got 2.0"),
]


@pytest.mark.parametrize(("backend", "line", "expected"), BAD_VALUES)
def test_a_bad_value_of_each_backend_is_refused_when_read(tmp_path, backend: str, line: str, expected: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(f'backend = "{backend}"\n[{backend}]\n{line}\n')
    with pytest.raises(TargetError) as info:
        load_target(str(path))
    assert info.value.message == f"target 'bad': {expected}"


def test_every_problem_of_a_table_is_listed_in_one_error(tmp_path) -> None:
    path = tmp_path / "two.toml"
    path.write_text('backend = "lava"\n[lava]\nbias_bits = 14\nthreshold_bits = 18\n')
    with pytest.raises(TargetError) as info:
        load_target(str(path))
    assert info.value.message == ("target 'two': [lava] bias_bits must be an integer in 2..13, got 14; "
                                  "[lava] threshold_bits must be an integer in 2..17, got 18")
    assert "13 signed bits" in info.value.hint and "17 unsigned bits" in info.value.hint


def test_an_unknown_backend_lists_the_registered_ones(tmp_path) -> None:
    path = tmp_path / "foreign.toml"
    path.write_text('backend = ["onnx"]')
    with pytest.raises(TargetError, match=r"names backend \['onnx'\]") as info:
        load_target(str(path))
    assert info.value.hint == "backend must be one of onnx, openvino, lava, nir"


def test_a_target_holds_its_backends_typed_options() -> None:
    target = load_target("onnx-cpu")
    assert target.options.align_channels == 8 and target.options.allow_spinning is False
    assert load_target("nir").options.dt == 1e-4
    with pytest.raises(TargetError, match="options are a dict, not the OnnxOptions of backend 'onnx'"):
        dataclasses.replace(target, options={"opset": 17})


def test_targets_json_lists_every_option_with_its_default() -> None:
    result = invoke("targets", "--json")
    listed = {t["name"]: t["options"] for t in json.loads(result.stdout)}
    assert listed["onnx-cpu"]["opset"] == 17 and listed["onnx-cpu"]["allow_spinning"] is False
    assert listed["loihi2-sim"]["resources"]["chips"] == 1 and listed["nir"]["dt"] == 1e-4
