"""SCA beyond the paper against its honest baselines: one row per (dataset, method, keep), resumable.

    nice .venv/bin/python benchmarks/sca_beyond.py                 # every row, 3 seeds
    nice .venv/bin/python benchmarks/sca_beyond.py --seeds 0 --datasets mnist5k --methods dense sca-best

Writes benchmarks/results/sca_beyond.{json,md}. Per dataset and seed, with the same data, T and
total epochs (structure learning plus fine-tuning), last-epoch test accuracy:
- dense: the full network (its checkpoint is the teacher of the distilling rows);
- paper: SCA with the published rule (raw global ranking, fixed target from the first update,
  regrown channels resume from their momentum, no fine-tuning, no teacher);
- sca-best: the best recipe found (BEST below);
- prune-only: sca-best without regrowth (pruned channels never return);
- scratch: a dense network of sca-best's final widths trained from scratch (BN recalibrated as sca-best's);
- scratch-kd: the same with the dense teacher (the fair control for distillation);
- scratch-long: scratch for the dense epochs plus sca-best's, the compute sca-best used in all (it
  starts from the dense model): the fair control for the warm start;
- no-init, no-kd, no-finetune, no-reinit, no-ramp, no-recal: sca-best with one option returned to
  the paper's (ablation).
Every pruned checkpoint is compiled (`compile_model`) and must strip exactly: every masked
channel certified silent and removed, stripped vs masked exact. Finished runs are saved at once
and skipped on a rerun while their recorded config is still the one the study would run (a changed
recipe reruns what it changes), so the study can be stopped and resumed; checkpoints live in --ckpt-dir.
The tables show only runs of the current recipe; the others stay in the JSON, listed as superseded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from scadeploy.compiler import compile_model
from scadeploy.data.datasets import load_dataset
from scadeploy.frontends.checkpoint import save_checkpoint
from scadeploy.measure.synops import measure_synops
from scadeploy.models import MODEL_WIDTH_ARG
from scadeploy.sca import TrainConfig, train

SETUPS = {
    "mnist5k": {"model": "vgg_mnist_wide", "dataset": "mnist5k", "epochs": 6, "finetune": 3},
    "digits": {"model": "digits", "dataset": "digits", "epochs": 16, "finetune": 6,
               "model_kwargs": {"widths": [32, 64, 64]}},
}
KEEPS = (0.2, 0.1)
PAPER = {"ranking": "paper"}
# The measured best recipe (see the ablation rows): start from the dense model's weights at a lower lr,
# per-layer mean ranking, a ramp over half the structure-learning epochs, a fine-tuning phase, regrown
# channels re-initialised, the dense teacher, BN statistics recalibrated before every evaluation.
BEST = {"init": True, "lr": 0.02, "ranking": "layer_mean", "ramp_fraction": 0.5, "finetune": True,
        "regrow_init": "reinit", "teacher": True, "bn_recalibrate": 16}
ABLATIONS = {"no-init": {"init": False, "lr": None}, "no-kd": {"teacher": False}, "no-finetune": {"finetune": False},
             "no-reinit": {"regrow_init": "momentum"}, "no-ramp": {"ramp_fraction": 0.0},
             "no-recal": {"bn_recalibrate": 0}}
METHODS = ("dense", "sca-best", "scratch", "scratch-kd", "scratch-long", "paper", "prune-only", *ABLATIONS)
PRUNED = ("sca-best", "paper", "prune-only", *ABLATIONS)
SYNOPS_SAMPLES = 64


def recipe(method: str) -> dict:
    """The pruning options of a pruned method, before they are resolved against a setup."""
    if method == "paper":
        return dict(PAPER)
    options = dict(BEST)
    if method == "prune-only":
        options["prune_only"] = True
    return options | ABLATIONS.get(method, {})


class Study:
    """The JSON report, the checkpoint folder, and how each (dataset, method, keep, seed) run is configured."""

    def __init__(self, out: Path, ckpt_dir: Path) -> None:
        self.out, self.ckpt_dir = out, ckpt_dir
        self.report = json.loads(out.read_text()) if out.exists() else {"runs": {}}
        self.runs: dict = self.report["runs"]

    @staticmethod
    def key(dataset: str, method: str, keep: float | None, seed: int) -> str:
        return f"{dataset}/{method}/{keep if keep is not None else 1.0}/{seed}"

    def checkpoint_path(self, key: str) -> Path:
        return self.ckpt_dir / (key.replace("/", "_") + ".pt")

    def teacher(self, dataset: str, seed: int) -> Path | None:
        """The dense checkpoint of this seed, or None until it exists."""
        path = self.checkpoint_path(self.key(dataset, "dense", None, seed))
        return path if path.exists() else None

    def config(self, dataset: str, method: str, keep: float | None, seed: int) -> TrainConfig | None:
        """The run's config, or None while a run it depends on (teacher, widths) is not done."""
        setup = dict(SETUPS[dataset])
        epochs, finetune = setup.pop("epochs"), setup.pop("finetune")
        kwargs = dict(setup.pop("model_kwargs", {}))
        total = epochs + finetune
        if method == "dense":
            return TrainConfig(seed=seed, epochs=total, model_kwargs=kwargs, **setup)
        if method in ("scratch", "scratch-kd", "scratch-long"):
            source = self.runs.get(self.key(dataset, "sca-best", keep, seed))
            teacher = self.teacher(dataset, seed)
            if source is None or (method == "scratch-kd" and teacher is None):
                return None
            kwargs[MODEL_WIDTH_ARG[setup["model"]]] = list(source["kept"].values())
            epochs_run = 2 * total if method == "scratch-long" else total  # dense (total) + sca-best (total)
            return TrainConfig(seed=seed, epochs=epochs_run, model_kwargs=kwargs, bn_recalibrate=BEST["bn_recalibrate"],
                               teacher=str(teacher) if method == "scratch-kd" else None, **setup)
        options = recipe(method)
        use_teacher, use_finetune = options.pop("teacher", False), options.pop("finetune", False)
        use_init = options.pop("init", False)
        teacher = self.teacher(dataset, seed)
        if (use_teacher or use_init) and teacher is None:
            return None
        structure_epochs = epochs if use_finetune else total
        options["ramp"] = round(options.pop("ramp_fraction", 0.0) * epochs)
        return TrainConfig(seed=seed, keep_ratio=keep, epochs=structure_epochs,
                           finetune=finetune if use_finetune else 0, model_kwargs=kwargs,
                           teacher=str(teacher) if use_teacher else None, init=str(teacher) if use_init else None,
                           **setup, **options)

    def is_done(self, key: str, config: TrainConfig) -> bool:
        """The run is recorded with this very config (fields it predates read as their defaults)."""
        run = self.runs.get(key)
        return run is not None and TrainConfig().to_dict() | run["config"] == config.to_dict()

    def run(self, key: str, config: TrainConfig) -> dict:
        start = time.perf_counter()
        result = train(config)
        save_checkpoint(result.checkpoint, self.checkpoint_path(key))
        meta = result.checkpoint.meta
        row = {"acc": meta["accuracy"]["last"], "kept": result.history[-1].kept, "keep_ratio": meta["keep_ratio"],
               "epochs": config.resolved().total_epochs, "config": config.to_dict(),
               "seconds": round(time.perf_counter() - start, 1),
               "history": [round(h.test_accuracy, 2) for h in result.history]}
        return row | deployed(result.checkpoint, pruned=config.budget is not None)

    def is_current(self, key: str) -> bool:
        """The recorded run is what the study would run now (its dependencies included)."""
        dataset, method, keep, seed = key.split("/")
        config = self.config(dataset, method, None if method == "dense" else float(keep), int(seed))
        return config is not None and self.is_done(key, config)

    def save(self, threads: int) -> None:
        current = {key: run for key, run in self.runs.items() if self.is_current(key)}
        self.report.update(rows=rows(current), superseded=sorted(set(self.runs) - set(current)), setups=SETUPS,
                           best=BEST, ablations=ABLATIONS,
                           machine={"cpus": os.cpu_count(), "threads": threads, "platform": platform.platform()})
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text(json.dumps(self.report, indent=2))
        self.out.with_suffix(".md").write_text(summary_markdown(self.report["rows"]) + "\n"
                                               + markdown(self.report["rows"]))


def deployed(ckpt, pruned: bool) -> dict:
    """Compile the checkpoint: SynOps per test sample of the stripped network (NeuroBench's count), and for a
    pruned one whether it strips exactly (every masked channel certified silent and removed, stripped vs
    masked exact)."""
    images = load_dataset(ckpt.meta["dataset"], False).tensors[0][:SYNOPS_SAMPLES]
    result = compile_model(ckpt.build(), ckpt.masks if pruned else None, images, ckpt.timesteps)
    out = {"synops": round(measure_synops(result.deployable, images).effective_acs)}
    if pruned:
        out["strips_exactly"] = bool(result.parity.exact and not result.report.kept)
    return out


def rows(runs: dict) -> list[dict]:
    """One row per (dataset, method, keep): seeds, per-seed accuracy, mean, epochs, SynOps (mean)."""
    grouped: dict[tuple, list] = {}
    for key, run in runs.items():
        dataset, method, keep, seed = key.split("/")
        grouped.setdefault((dataset, method, float(keep)), []).append((int(seed), run))
    out = []
    for (dataset, method, keep), seeded in sorted(grouped.items(), key=lambda kv: (kv[0][0], -kv[0][2],
                                                                                  METHODS.index(kv[0][1]))):
        seeded.sort()
        accs = [run["acc"] for _, run in seeded]
        out.append({"dataset": dataset, "model": SETUPS[dataset]["model"], "method": method, "keep": keep,
                    "seeds": [s for s, _ in seeded], "acc": accs, "acc_mean": statistics.mean(accs),
                    "acc_sd": statistics.stdev(accs) if len(accs) > 1 else None,
                    "epochs": seeded[0][1]["epochs"],
                    "synops": round(statistics.mean(run["synops"] for _, run in seeded)),
                    "kept": seeded[0][1]["kept"],
                    "strips_exactly": all(run.get("strips_exactly", True) for _, run in seeded)})
    return out


def markdown(table: list[dict]) -> str:
    lines = ["| dataset | method | keep | acc % (mean ± sd) | per seed | SynOps / sample | kept per layer (first seed) "
             "| strips exactly |", "|---|---|---|---|---|---|---|---|"]
    for row in table:
        sd = "" if row["acc_sd"] is None else f" ± {row['acc_sd']:.1f}"
        per_seed = " / ".join(f"{a:.1f}" for a in row["acc"])
        kept = "-".join(str(v) for v in row["kept"].values())
        lines.append(f"| {row['dataset']} | {row['method']} | {row['keep']:g} | {row['acc_mean']:.1f}{sd} | {per_seed} "
                     f"| {row['synops']:,} | {kept} | {'yes' if row['strips_exactly'] else 'NO'} |")
    return "\n".join(lines) + "\n"


def summary_markdown(table: list[dict]) -> str:
    """Mean ± sd over seeds: one row per method, one column per (dataset, keep); dense in every column."""
    columns = [(d, k) for d in SETUPS for k in KEEPS if any(r["dataset"] == d for r in table)]
    cell = {(r["dataset"], r["method"], r["keep"]): r for r in table}
    lines = ["| method | " + " | ".join(f"{d} {k:.0%}" for d, k in columns) + " |", "|---|" + "---|" * len(columns)]
    for method in METHODS:
        cells = []
        for dataset, keep in columns:
            row = cell.get((dataset, method, 1.0 if method == "dense" else keep))
            sd = "" if row is None or row["acc_sd"] is None else f" ± {row['acc_sd']:.1f}"
            cells.append("-" if row is None else f"{row['acc_mean']:.1f}{sd} ({len(row['seeds'])})")
        if any(c != "-" for c in cells):
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--keeps", nargs="+", type=float, default=list(KEEPS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sca_beyond.json"))
    parser.add_argument("--ckpt-dir", type=Path, default=Path("runs/sca_beyond"))
    parser.add_argument("--merge", type=Path, nargs="*", default=[],
                        help="Only merge: take the runs of reports written by parallel processes (each its own --out) "
                             "that --out lacks or holds only under an older recipe, then write the table.")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    study = Study(args.out, args.ckpt_dir)
    others = [json.loads(other.read_text())["runs"] for other in args.merge]
    for _ in range(2):  # twice: a scratch run is current only once the sca-best run it follows has been taken
        for runs in others:
            study.runs.update({k: v for k, v in runs.items() if k not in study.runs or not study.is_current(k)})
    if args.merge:
        study.save(args.threads)
        print(summary_markdown(study.report["rows"]))
        return
    args.ckpt_dir.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        for dataset in args.datasets:
            for method in args.methods:
                for keep in (None,) if method == "dense" else args.keeps:
                    key = study.key(dataset, method, keep, seed)
                    config = study.config(dataset, method, keep, seed)
                    if config is None:
                        print(f"{key}: waits for the run it depends on", flush=True)
                        continue
                    needs_file = method == "dense" and not study.checkpoint_path(key).exists()
                    if study.is_done(key, config) and not needs_file:
                        continue
                    study.runs[key] = study.run(key, config)
                    run = study.runs[key]
                    print(f"{key}: {run['acc']:.2f}%  kept {list(run['kept'].values())}  "
                          f"strips {run.get('strips_exactly', '-')}  {run['seconds']:.0f} s", flush=True)
                    study.save(args.threads)
    study.save(args.threads)
    print(markdown(study.report["rows"]))


if __name__ == "__main__":
    main()
