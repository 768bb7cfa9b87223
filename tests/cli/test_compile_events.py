"""`scadeploy compile --data recordings.npz --sensor-size W,H,P`: event recordings as tonic gives them, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from data.event_files import digits_recordings, save_npz
from support import invoke

from scadeploy.data.events import TONIC_DTYPE
from scadeploy.models import randomize_batchnorm

FACTORY = "own_model.nets:build_events"  # a DVS-style network: 2 polarity channels, 8x8, IF neurons


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> Path:
    from own_model.nets import EventNet

    root = tmp_path_factory.mktemp("events")
    torch.manual_seed(0)
    model = randomize_batchnorm(EventNet(), torch.Generator().manual_seed(0)).eval()
    torch.save(model.state_dict(), root / "w.pt")
    recordings, labels = digits_recordings(16)
    save_npz(root / "events.npz", recordings, labels)
    return root


def _compile(files: Path, out: Path, data: Path, *extra: str):
    return invoke("compile", str(files / "w.pt"), "--model", FACTORY, "--data", str(data), "-o", str(out), *extra)


def test_compiles_from_recordings_and_onnx_agrees(files, tmp_path):
    out = tmp_path / "D"
    result = _compile(files, out, files / "events.npz", "--sensor-size", "8,8,2", "--timesteps", "4",
                      "-t", "onnx-cpu")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["encoding"] == "sequence" and manifest["input_shape"] == [2, 8, 8]
    assert manifest["data"]["events"]["sensor_size"] == [8, 8, 2] and manifest["data"]["samples"] == 16
    assert manifest["parity"]["trace_vs_model"]["passed"]
    onnx = manifest["targets"]["onnx-cpu"]["parity"]
    assert onnx["passed"] and onnx["spike_mismatches"] == 0 and onnx["class_agreement"] == 1.0
    assert "events.npz" in result.stdout and "ONNX vs torch reference" in result.stdout
    bench = ["-b", "1", "--warmup", "0", "--repeats", "1", "-r", "onnx:stripped", "--json"]
    recorded = invoke("benchmark", str(out), *bench)  # the recordings are binned again, for the recorded sensor
    assert recorded.exit_code == 0, recorded.output
    given = invoke("benchmark", str(out), *bench, "--data", str(files / "events.npz"))  # sensor from the graph
    assert given.exit_code == 0, given.output
    manifest["data"]["events"]["sensor_size"] = [8, 8]
    (out / "manifest.json").write_text(json.dumps(manifest))
    tampered = invoke("benchmark", str(out), *bench)
    assert tampered.exit_code == 2 and "data.events.sensor_size must be [W, H, P]" in tampered.stderr


def _fields(*names: str) -> np.dtype:
    return np.dtype([(n, TONIC_DTYPE[n]) for n in names])


def _bad(root: Path, kind: str) -> Path:
    recordings, labels = digits_recordings(4)
    first = recordings[0]
    if kind == "missing field":
        stripped = np.zeros(first.size, _fields("x", "y", "t"))
        for name in ("x", "y", "t"):
            stripped[name] = first[name]
        recordings[0] = stripped
    elif kind == "negative coordinate":
        recordings[1]["x"][0] = -3
    elif kind == "outside the sensor":
        recordings[1]["y"][0] = 8
    elif kind == "wrong dtype":
        floats = np.zeros(first.size, np.dtype([("x", "i2"), ("y", "i2"), ("t", "f8"), ("p", "?")]))
        for name in ("x", "y", "t", "p"):
            floats[name] = first[name]
        recordings[0] = floats
    elif kind == "empty":
        recordings = [r[:0] for r in recordings]
    elif kind == "unsorted":
        recordings[2]["t"] = recordings[2]["t"][::-1].copy()
    return save_npz(root / f"{kind.replace(' ', '_')}.npz", recordings, labels)


@pytest.mark.parametrize("kind, message", [
    ("missing field", "recording 'arr_0' has fields ['x', 'y', 't'], missing ['p']"),
    ("negative coordinate", "recording 'arr_1' has x in -3.."),
    ("outside the sensor", "recording 'arr_1' has y in 0..8, outside the sensor's 0..7"),
    ("wrong dtype", "field 't' of recording 'arr_0' has dtype float64"),
    ("empty", "no event in any of the 4 recordings"),
    ("unsorted", "recording 'arr_2' has timestamps out of order"),
])
def test_bad_recordings_give_one_error_line(files, tmp_path, kind, message):
    out = tmp_path / "D"
    result = _compile(files, out, _bad(tmp_path, kind), "--sensor-size", "8,8,2", "-T", "4", "-t", "onnx-cpu")
    _assert_clean_error(result, message, tmp_path)


@pytest.mark.parametrize("extra, message", [
    ((), "binning them needs the sensor size and T"),
    (("--sensor-size", "8,8,2"), "binning them needs the sensor size and T"),
])
def test_recordings_need_the_sensor_and_t(files, tmp_path, extra, message):
    _assert_clean_error(_compile(files, tmp_path / "D", files / "events.npz", *extra), message, tmp_path)


def test_sensor_size_without_recordings_is_refused(files, tmp_path):
    np.savez(tmp_path / "frames.npz", x=np.zeros((4, 4, 2, 8, 8), np.float32))
    result = _compile(files, tmp_path / "D", tmp_path / "frames.npz", "--sensor-size", "8,8,2", "-T", "4")
    _assert_clean_error(result, "--sensor-size bins event recordings, but 'frames.npz' holds no event recordings",
                        tmp_path)
    result = _compile(files, tmp_path / "D", files / "events.npz", "--sensor-size", "8,8", "-T", "4")
    assert result.exit_code == 2 and "is not W,H,P" in result.stderr


def _assert_clean_error(result, message: str, root: Path) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines[0].startswith("error: ") and len(lines) <= 2 and "Traceback" not in result.output, result.stderr
    assert message in lines[0], lines[0]
    assert not (root / "D").exists() and not [p for p in root.iterdir() if p.name.startswith(".D.")]
