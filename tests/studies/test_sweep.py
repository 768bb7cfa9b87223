"""`scadeploy sweep` and the recipe controls end to end: every option's checkpoint strips exactly."""

from __future__ import annotations

import json

import pytest
from support import invoke

from scadeploy.compiler import compile_checkpoint
from scadeploy.frontends.checkpoint import save_checkpoint
from scadeploy.sca import TrainConfig, train
from scadeploy.studies.sweep import pareto_front

TINY = {"keep_ratio": 0.3, "epochs": 2, "batch_size": 128, "model_kwargs": {"widths": [4, 8, 8]}}
OPTIONS = {
    "paper": {"ranking": "paper"},
    "layer_mean": {"ranking": "layer_mean"},
    "min_keep": {"min_keep": 0.5},
    "warmup": {"warmup": 1},
    "ramp": {"ramp": 2},
    "augment": {"augment": True},
    "prune_only": {"prune_only": True},
}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_every_option_strips_exactly(tmp_path, name):
    result = train(TrainConfig(**{**TINY, **OPTIONS[name]}))
    path = save_checkpoint(result.checkpoint, tmp_path / "model.pt")
    compiled, _ = compile_checkpoint(path, tmp_path / "out")
    assert compiled.report.kept == []  # every pruned channel certified silent, none kept for safety
    after = {row.layer: row.after for row in compiled.report.layers}
    assert {name: after[name] for name in result.masks} == {n: int(m.sum()) for n, m in result.masks.items()}
    assert compiled.parity.removed_channel_spikes == 0 and compiled.parity.float64.spike_mismatches == 0


def test_pareto_front_keeps_the_undominated_runs():
    runs = [{"label": "dense", "accuracy": 99.0, "synops": 100.0}, {"label": "a", "accuracy": 97.0, "synops": 20.0},
            {"label": "b", "accuracy": 95.0, "synops": 30.0}, {"label": "c", "accuracy": 90.0, "synops": 10.0}]
    assert pareto_front(runs, "synops") == ["c", "a", "dense"]  # b costs more than a and is less accurate


@pytest.mark.slow  # five 3-epoch trainings of a 4-8-8 net, each compiled and timed: about half a minute
def test_sweep_writes_json_and_plot_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    args = ("sweep", "--dataset", "digits", "--keep", "0.5", "--keep", "0.3", "--epochs", "3", "--width", "4",
            "--width", "8", "--width", "8", "--no-prune-only", "--repeats", "3", "--synops-samples", "8",
            "-o", str(out), "--json")
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    report = json.loads((out / "sweep.json").read_text())
    labels = [r["label"] for r in report["runs"]]
    assert labels == ["dense", "sca-0.5", "scratch-0.5", "sca-0.3", "scratch-0.3"]
    runs = {r["label"]: r for r in report["runs"]}
    assert runs["scratch-0.3"]["kept"] == runs["sca-0.3"]["kept"]  # the same widths, trained dense
    assert runs["dense"]["dense_macs"] > runs["sca-0.3"]["dense_macs"] > 0
    assert all(r["synops"] > 0 and r["latency_ms"] > 0 and 0 <= r["accuracy"] <= 100 for r in report["runs"])
    assert set(report["pareto"]["synops"]) <= set(labels)
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"
    checkpoint = out / "runs" / "sca-0.3" / "model.pt"
    before = checkpoint.stat().st_mtime_ns
    second = invoke(*args)  # everything is done: read back, not retrained
    assert second.exit_code == 0 and checkpoint.stat().st_mtime_ns == before
    assert json.loads((out / "sweep.json").read_text())["runs"] == report["runs"]
    fewer_epochs = list(args)
    fewer_epochs[fewer_epochs.index("--epochs") + 1] = "2"
    other = invoke(*fewer_epochs)  # other options are not mixed into this sweep's runs
    assert other.exit_code != 0 and "trained with other options" in other.output


def test_sweep_refuses_a_dense_keep_ratio(tmp_path):
    result = invoke("sweep", "--keep", "1.0", "-o", str(tmp_path / "s"))
    assert result.exit_code != 0 and "keep ratios must lie in (0, 1)" in result.output
