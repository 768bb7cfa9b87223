"""`scadeploy demo` end to end, shortened (1 epoch, 2 Lava samples): every stage is measured."""

from __future__ import annotations

import json

from support import invoke


def test_demo_runs_every_stage(tmp_path) -> None:
    out = tmp_path / "demo"
    result = invoke("demo", "-o", str(out), "--epochs", "1", "--lava-samples", "2", "--repeats", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    stages = {s["stage"]: s for s in report["stages"]}
    assert list(stages) == ["dense", "masked", "stripped (torch)", "stripped (ONNX)", "fixed-point emulator",
                            "fixed-point lava"]
    # stripping is exact and ONNX matches the reference: the same predictions on the same 450 images
    assert stages["stripped (torch)"]["accuracy"] == stages["masked"]["accuracy"]
    assert stages["stripped (ONNX)"]["accuracy"] == stages["masked"]["accuracy"]
    assert stages["stripped (torch)"]["params"] < stages["masked"]["params"]
    assert stages["stripped (torch)"]["synops"] == stages["masked"]["synops"]
    assert stages["fixed-point lava"]["samples"] == 2
    assert report["compile"]["parity"]["stripped_vs_masked"]["exact"]
    assert report["simulation"]["lava"]["emulator_spike_mismatches"] == 0
    assert json.loads((out / "report.json").read_text())["stages"] == report["stages"]
    for figure in report["figures"]:
        assert (out / figure.split("/")[-1]).read_bytes()[:4] == b"\x89PNG"
