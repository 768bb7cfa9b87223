"""The accuracy-cost curve of SCA: keep ratios trained beside their honest baselines, each deployed and measured.

A pruned network is only worth its cost if it beats what the same budget buys otherwise, so every
sweep trains, with one recipe and one number of epochs:
- `dense`: the full network;
- `sca-K`: SCA keeping the fraction K of prunable channels;
- `prune-only-K` (optional): the same without regrowth (pruned channels never return);
- `scratch-K` (optional): a dense network trained from scratch at the widths `sca-K` ended with.
Each run is written as a checkpoint, compiled to onnx-cpu (which certifies every pruned channel
silent and strips it), and measured: last-epoch test accuracy, SynOps (NeuroBench) of the stripped
network on test samples, its dense MACs and parameters, and ONNX Runtime latency.

Layout of DIR: `runs/<label>/{model.pt, compiled/, result.json}`, `sweep.json`, `sweep.png`.
A run whose `result.json` exists is read back, not redone, so an interrupted sweep resumes.
This module sits above `sca` (training) and `compiler`/`measure` (deployment), which `sca` may not import.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from scadeploy.artifact.directory import open_compiled
from scadeploy.artifact.layout import ONNX_SEQUENCE
from scadeploy.compiler import compile_checkpoint
from scadeploy.data.samples import load_samples
from scadeploy.errors import ScadeployError
from scadeploy.frontends.checkpoint import load_checkpoint, save_checkpoint
from scadeploy.measure.harness import time_runners
from scadeploy.measure.synops import count_params, dense_macs, measure_synops
from scadeploy.models import MODEL_WIDTH_ARG
from scadeploy.sca import TrainConfig, train
from scadeploy.sca.trainer import StepCallback

TARGET = "onnx-cpu"
RESULT_FILE = "result.json"


class SweepError(ScadeployError):
    """A sweep was asked for something it cannot do."""


@dataclass(frozen=True)
class SweepPlan:
    """What to train and how to measure it; `base` holds every training option shared by the runs."""

    base: TrainConfig
    keeps: tuple[float, ...]
    prune_only: bool = True
    scratch: bool = True
    synops_samples: int = 64
    latency_batch: int = 16
    latency_repeats: int = 20
    threads: int = 1

    def validate(self) -> None:
        if not self.keeps:
            raise SweepError("a sweep needs at least one keep ratio", "e.g. --keep 0.3 --keep 0.1")
        bad = [k for k in self.keeps if not 0.0 < k < 1.0]
        if bad:
            raise SweepError(f"keep ratios must lie in (0, 1), got {bad}", "1.0 is the dense run, always included")
        self.base.resolved()


def run_labels(plan: SweepPlan) -> list[str]:
    """Every run in the order it is trained (a scratch run after the SCA run whose widths it takes)."""
    labels = ["dense"]
    for keep in plan.keeps:
        labels.append(f"sca-{keep:g}")
        labels += [f"scratch-{keep:g}"] if plan.scratch else []
        labels += [f"prune-only-{keep:g}"] if plan.prune_only else []
    return labels


def run_config(plan: SweepPlan, label: str, done: dict[str, dict]) -> TrainConfig:
    """The training config of one run; a scratch run reads the final widths of its SCA run in `done`."""
    kind, _, keep = label.rpartition("-") if label != "dense" else ("dense", "", "")
    base = replace(plan.base, keep_ratio=None, alpha=None, beta=None, prune_only=False)
    if kind == "dense":
        return base
    if kind == "scratch":
        widths = list(done[f"sca-{keep}"]["kept"].values())
        return replace(base, model_kwargs={**base.model_kwargs, MODEL_WIDTH_ARG[base.model]: widths})
    return replace(base, keep_ratio=float(keep), prune_only=kind == "prune-only")


def measure_run(label: str, config: TrainConfig, ckpt_path: Path, compiled_dir: Path, plan: SweepPlan) -> dict:
    """Compile the checkpoint to onnx-cpu and measure accuracy, SynOps, dense MACs, params and latency."""
    from scadeploy.backends.onnx.runtime import OrtRunner

    result, manifest = compile_checkpoint(ckpt_path, compiled_dir, (TARGET,), force=True)
    if result.report.kept:
        raise SweepError(f"run '{label}': {len(result.report.kept)} pruned channels are not provably silent",
                         "the final masks were not applied to the checkpoint")
    graph = result.deployable
    samples = load_samples(config.dataset, config.data_dir, config.timesteps)
    synops = measure_synops(graph, samples.take(plan.synops_samples).x)
    onnx_file = next(f for f in open_compiled(compiled_dir).target_files("onnx") if f.name == ONNX_SEQUENCE)
    runner = OrtRunner(onnx_file, f"onnx:{label}", "cpu", plan.threads)
    timing = time_runners({label: runner}, samples.cycle(plan.latency_batch).numpy(), 3, plan.latency_repeats,
                          progress=False)[label]
    meta = manifest.source.details["meta"]
    kept = {name: int(mask.sum()) for name, mask in load_checkpoint(ckpt_path).masks.items()}
    return {"label": label, "kind": label.rpartition("-")[0] or "dense", "keep_ratio": meta["keep_ratio"],
            "accuracy": meta["accuracy"]["last"], "best_accuracy": meta["accuracy"]["best"], "kept": kept,
            "params": count_params(graph), "dense_macs": dense_macs(graph),
            "synops": synops.effective_acs + synops.effective_macs, "synops_acs": synops.effective_acs,
            "synops_macs": synops.effective_macs, "latency_ms": timing.p50_ms, "latency_batch": plan.latency_batch,
            "train_seconds": round(meta["seconds"], 1), "config": config.to_dict()}


def pareto_front(runs: list[dict], cost: str) -> list[str]:
    """Labels of the runs no other run beats on both accuracy and `cost` (lower cost, higher accuracy)."""
    front, best = [], -1.0
    for run in sorted(runs, key=lambda r: (r[cost], -r["accuracy"])):
        if run["accuracy"] > best:
            front.append(run["label"])
            best = run["accuracy"]
    return front


ProgressCallback = Callable[[str, int, int], None]  # (label, runs done, runs in all)


def run_sweep(plan: SweepPlan, out_dir: str | Path, on_run: ProgressCallback | None = None,
              on_step: StepCallback | None = None) -> dict:
    """Train, compile and measure every run not already in `out_dir`; write sweep.json and sweep.png."""
    from scadeploy.studies.sweep_plot import save_sweep_plot

    plan.validate()
    out_dir = Path(out_dir)
    torch.set_num_threads(plan.threads)
    done: dict[str, dict] = {}
    labels = run_labels(plan)
    for index, label in enumerate(labels):
        run_dir = out_dir / "runs" / label
        result_file = run_dir / RESULT_FILE
        if on_run is not None:
            on_run(label, index, len(labels))
        config = run_config(plan, label, done)
        if result_file.is_file():
            done[label] = json.loads(result_file.read_text())
            if done[label].get("config") != json.loads(json.dumps(config.to_dict())):
                raise SweepError(f"'{result_file}' was trained with other options than this sweep asks for",
                                 "use a new output directory, or rerun with the options it was made with")
            continue
        run_dir.mkdir(parents=True, exist_ok=True)
        trained = train(config, on_step=on_step)
        save_checkpoint(trained.checkpoint, run_dir / "model.pt")
        done[label] = measure_run(label, config, run_dir / "model.pt", run_dir / "compiled", plan)
        shutil.rmtree(run_dir / "compiled" / ".staging", ignore_errors=True)
        result_file.write_text(json.dumps(done[label], indent=2))
    runs = [done[label] for label in labels]
    report = {"base": plan.base.resolved().to_dict(), "keeps": list(plan.keeps), "runs": runs,
              "pareto": {"synops": pareto_front(runs, "synops"), "latency_ms": pareto_front(runs, "latency_ms")},
              "measured_at": time.strftime("%Y-%m-%d %H:%M:%S"), "plot": "sweep.png"}
    (out_dir / "sweep.json").write_text(json.dumps(report, indent=2))
    save_sweep_plot(report, out_dir / "sweep.png")
    return report
