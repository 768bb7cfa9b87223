"""`scadeploy train` end to end: the checkpoint it writes compiles with every pruned channel stripped."""

from __future__ import annotations

import json
import subprocess
import sys

from data.cifar_files import write_cifar
from support import invoke

from scadeploy.compiler import compile_checkpoint
from scadeploy.frontends.checkpoint import load_checkpoint

SMALL_DIGITS = ("--width", "8", "--width", "16", "--width", "16", "--batch-size", "128")


def test_train_json_then_compile_strips_every_pruned_channel(tmp_path):
    path = tmp_path / "digits.pt"
    result = invoke("train", "--keep", "0.3", "--epochs", "2", *SMALL_DIGITS, "-o", str(path), "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["checkpoint"] == str(path) and len(summary["history"]) == 2
    assert summary["kept_total"] >= 12 and summary["channels_total"] == 40
    ckpt = load_checkpoint(path)
    compiled, manifest = compile_checkpoint(path, tmp_path / "out")
    assert compiled.report.kept == []  # every masked channel is certified silent ...
    for row in compiled.report.layers:  # ... and removed
        if row.layer in ckpt.masks:
            assert row.after == int(ckpt.masks[row.layer].sum()) and row.masked == row.before - row.after
    assert compiled.parity.exact and manifest.parity["stripped_vs_masked"]["inputs"] == "digits test split"


def test_every_recipe_option_still_strips_exactly(tmp_path):
    teacher = tmp_path / "dense.pt"
    assert invoke("train", "--epochs", "1", *SMALL_DIGITS, "-o", str(teacher)).exit_code == 0
    path = tmp_path / "student.pt"
    result = invoke("train", "--keep", "0.2", "--epochs", "2", "--ramp", "2", "--finetune", "1",
                    "--regrow-init", "reinit", "--teacher", str(teacher), "--kd-weight", "0.7", "--bn-recalibrate", "3",
                    "--init", str(teacher),
                    *SMALL_DIGITS,
                    "-o", str(path), "--json")
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.stdout)["history"]) == 3
    ckpt = load_checkpoint(path)
    compiled, _ = compile_checkpoint(path, tmp_path / "out")
    assert compiled.report.kept == [] and compiled.parity.exact
    assert ckpt.meta["config"]["teacher"] == str(teacher) and ckpt.meta["config"]["finetune"] == 1
    assert ckpt.meta["config"]["bn_recalibrate"] == 3 and ckpt.meta["config"]["init"] == str(teacher)


def test_train_prints_epoch_lines(tmp_path):
    result = invoke("train", "--keep", "0.5", "--epochs", "1", "--prune-only", *SMALL_DIGITS,
                    "-o", str(tmp_path / "d.pt"))
    assert result.exit_code == 0, result.output
    line = next(x for x in result.stdout.splitlines() if x.startswith("epoch"))
    assert "loss" in line and "test" in line and "kept 20/40 [features.conv1=" in line and "pruned 20 regrown 0" in line
    assert "wrote" in result.stdout.splitlines()[-1]


def test_train_vgg16_on_cifar_files(tmp_path):
    write_cifar(tmp_path, "cifar10", per_file=4)
    path = tmp_path / "vgg.pt"
    result = invoke("train", "--model", "vgg16", "--dataset", "cifar10", "--data-dir", str(tmp_path), "--keep", "0.3",
                    "--epochs", "1", "--batch-size", "4", *[a for _ in range(13) for a in ("--width", "4")],
                    "-o", str(path), "--json")
    assert result.exit_code == 0, result.output
    ckpt = load_checkpoint(path)
    assert ckpt.meta["dataset"] == "cifar10" and ckpt.meta["data_dir"] == str(tmp_path)
    assert ckpt.arch["kwargs"]["widths"] == [4] * 13 and ckpt.input_shape == (3, 32, 32)


def test_user_errors_are_one_line(tmp_path):
    existing = tmp_path / "x.pt"
    existing.write_bytes(b"")
    cases = [
        (["-o", str(existing)], "exists"),
        (["--keep", "1.5", "-o", str(tmp_path / "a.pt")], "keep ratio 1.5"),
        (["--dataset", "cifar10", "-o", str(tmp_path / "b.pt")], "needs --data-dir"),
    ]
    for args, message in cases:
        result = invoke("train", *args)
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.stderr


def test_training_never_imports_lava():
    code = ("import sys, scadeploy.sca, scadeploy.cli.train, scadeploy.cli; "
            "print([m for m in sys.modules if m.split('.')[0] == 'lava'])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
