"""The bad-input table: every kind of bad input, across all commands, gives one clear message,
exit code 2, and no partial output."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from support import invoke, write_checkpoint

from scadeploy.models import build_model


class Payload:
    """Unpickling this would import and run code named by the file."""


def _rewrite(path: Path, change: Callable[[dict], None]) -> Path:
    raw = torch.load(path, weights_only=True)
    change(raw)
    torch.save(raw, path)
    return path


def _ckpt(tmp: Path, **kwargs) -> Path:
    return write_checkpoint(tmp / "model.pt", **kwargs)


def _compiled(tmp: Path) -> Path:
    assert invoke("compile", str(_ckpt(tmp)), "-o", str(tmp / "compiled")).exit_code == 0
    return tmp / "compiled"


def _cifar_dir(tmp: Path) -> Path:
    (tmp / "cifar").mkdir()
    (tmp / "cifar" / "data_batch_1").write_bytes(b"\x80\x04 not a pickle of a batch")
    return tmp / "cifar"


# (kind, setup(tmp) -> argv, text expected in the message)
CASES: list[tuple[str, Callable[[Path], list[str]], str]] = [
    ("missing checkpoint", lambda t: ["inspect", str(t / "nope.pt")], "does not exist"),
    ("corrupt checkpoint", lambda t: ["inspect", str(_write(t / "x.pt", b"PK\x03\x04garbage"))], "corrupt"),
    ("foreign checkpoint", lambda t: ["inspect", str(_save(t / "x.pt", build_model("digits").state_dict()))],
     "not a scadeploy checkpoint"),
    ("pickled code", lambda t: ["inspect", str(_save(t / "x.pt", {"format": "scadeploy.checkpoint",
                                                                   "x": Payload()}))], "pickled Python objects"),
    ("mask of wrong shape", lambda t: ["compile", str(_rewrite(_ckpt(t), lambda r: r["masks"].update(
        {"features.conv1": torch.ones(3, dtype=torch.bool)}))), "-o", str(t / "out")], "expected (16,)"),
    ("mask naming no layer", lambda t: ["compile", str(_rewrite(_ckpt(t), lambda r: r["masks"].update(
        {"classifier.fc9": torch.ones(3, dtype=torch.bool)}))), "-o", str(t / "out")], "names no layer"),
    ("unknown architecture", lambda t: ["compile", str(_rewrite(_ckpt(t), lambda r: r.update(
        arch={"name": "lenet5"}))), "-o", str(t / "out")], "unknown model 'lenet5'"),
    ("unsupported neuron", lambda t: ["inspect", str(_rewrite(_ckpt(t), lambda r: r["arch"]["kwargs"].update(
        neuron="izhikevich")))], "unknown neuron kind 'izhikevich'"),
    ("unknown target", lambda t: ["compile", str(_ckpt(t)), "-o", str(t / "out"), "--target", "tpu"],
     "unknown target 'tpu'"),
    ("malformed target file", lambda t: ["compile", str(_ckpt(t)), "-o", str(t / "out"), "--target",
                                         str(_write(t / "bad.toml", b"backend = [oops"))], "not valid TOML"),
    ("two targets of one backend", lambda t: ["compile", str(_ckpt(t)), "-o", str(t / "out"), "-t", "onnx-cpu",
                                              "-t", "onnx-cuda"], "both write"),
    ("soft reset on Lava", lambda t: ["compile", str(_rewrite(_ckpt(t), lambda r: r["arch"]["kwargs"].update(
        v_reset=None))), "-o", str(t / "out"), "--target", "loihi2-sim"], "soft reset"),
    ("existing output directory", lambda t: ["compile", str(_ckpt(t)), "-o", str(_mkdir(t / "out"))],
     "already exists"),
    ("benchmark without manifest", lambda t: ["benchmark", str(_mkdir(t / "empty"))], "manifest"),
    ("unknown runner", lambda t: ["benchmark", str(_compiled(t)), "-r", "tensorrt"], "unknown runner 'tensorrt'"),
    ("simulate without Lava target", lambda t: ["simulate", str(_compiled(t))], "without a Lava target"),
    ("train: keep ratio out of range", lambda t: ["train", "--keep", "1.7", "-o", str(t / "m.pt")], "keep"),
    ("train: CIFAR files missing", lambda t: ["train", "--model", "vgg16", "--dataset", "cifar10", "--data-dir",
                                              str(_mkdir(t / "nodata")), "-o", str(t / "m.pt")], "cifar"),
    ("train: CIFAR file not in the batch format", lambda t: ["train", "--model", "vgg16", "--dataset", "cifar10",
                                                             "--data-dir", str(_cifar_dir(t)), "-o",
                                                             str(t / "m.pt")], "data_batch_1"),
    ("train: existing output", lambda t: ["train", "-o", str(_write(t / "m.pt", b"x"))], "exists"),
    ("demo: existing output", lambda t: ["demo", "-o", str(_mkdir(t / "demo"))], "already exists"),
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _save(path: Path, obj: object) -> Path:
    torch.save(obj, path)
    return path


def _mkdir(path: Path) -> Path:
    path.mkdir()
    return path


def _snapshot(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


@pytest.mark.parametrize(("kind", "setup", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_input(tmp_path: Path, kind: str, setup, expected: str) -> None:
    argv = setup(tmp_path)
    before = _snapshot(tmp_path)
    result = invoke(*argv)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("error: ") and len(lines) <= 2, result.stderr
    assert expected.lower() in result.stderr.lower()
    assert "Traceback" not in result.output
    assert _snapshot(tmp_path) == before, "no partial output may be left behind"


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 15
