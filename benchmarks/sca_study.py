"""SCA against its honest baselines on mnist5k (vgg_mnist) and digits: one table, resumable.

    nice -n 10 .venv/bin/python benchmarks/sca_study.py            # writes benchmarks/results/sca_study.{json,md}

Per dataset and seed, all with the same recipe and epochs (last-epoch test accuracy):
- dense: the full network;
- scratch-K: a dense network trained from scratch at the widths SCA (best options) ends with at keep K;
- paper-K: SCA with the paper's rule (raw global ranking) and the previous recipe's augmentation;
- best-K: SCA with per-layer mean normalisation of the scores and no augmentation;
- tuned-K: best-K plus a per-layer minimum of K/2 of every layer's channels and a cubic ramp of the
  kept fraction over the first 40% of the epochs; scratch-tuned-K trains its final widths from scratch;
- prune-only-K, prune-only-tuned-K: best-K resp. tuned-K without regrowth (pruned channels never return);
- best-aug-20: the best options with augmentation, the measurement behind the augmentation default.
Runs go one at a time on one torch thread; every finished run is saved at once, and a run already in
the JSON is not redone, so the study can be stopped and resumed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from scadeploy.models import MODEL_WIDTH_ARG
from scadeploy.sca import TrainConfig, train

SETUPS = {
    "mnist5k": {"model": "vgg_mnist", "dataset": "mnist5k", "epochs": 8},
    "digits": {"model": "digits", "dataset": "digits", "epochs": 20, "model_kwargs": {"widths": [32, 64, 64]}},
}
PAPER = {"ranking": "paper", "augment": True}
BEST = {"ranking": "layer_mean", "augment": False}


def tuned(keep: float, epochs: int) -> dict:
    """The best options plus a per-layer minimum of half the target and a ramp over 40% of the epochs."""
    return {**BEST, "keep_ratio": keep, "min_keep": keep / 2, "ramp": round(0.4 * epochs)}


# label -> (options, or a function of the epochs giving them; the SCA run whose final widths it trains
# from scratch at, or None), in priority order.
RUNS: dict[str, tuple[dict | Callable[[int], dict], str | None]] = {
    "dense": ({"augment": False}, None),
    "tuned-20": (lambda epochs: tuned(0.2, epochs), None),
    "scratch-tuned-20": ({"augment": False}, "tuned-20"),
    "tuned-10": (lambda epochs: tuned(0.1, epochs), None),
    "scratch-tuned-10": ({"augment": False}, "tuned-10"),
    "prune-only-tuned-10": (lambda epochs: {**tuned(0.1, epochs), "prune_only": True}, None),
    "best-20": ({**BEST, "keep_ratio": 0.2}, None),
    "scratch-20": ({"augment": False}, "best-20"),
    "best-10": ({**BEST, "keep_ratio": 0.1}, None),
    "scratch-10": ({"augment": False}, "best-10"),
    "prune-only-10": ({**BEST, "keep_ratio": 0.1, "prune_only": True}, None),
    "paper-20": ({**PAPER, "keep_ratio": 0.2}, None),
    "paper-10": ({**PAPER, "keep_ratio": 0.1}, None),
    "prune-only-20": ({**BEST, "keep_ratio": 0.2, "prune_only": True}, None),
    "best-30": ({**BEST, "keep_ratio": 0.3}, None),
    "paper-30": ({**PAPER, "keep_ratio": 0.3}, None),
    "best-aug-20": ({"ranking": "layer_mean", "augment": True, "keep_ratio": 0.2}, None),
    "scratch-30": ({"augment": False}, "best-30"),
}


def run_key(dataset: str, label: str, seed: int) -> str:
    return f"{dataset}/{label}/{seed}"


def config_for(dataset: str, label: str, seed: int, done: dict) -> TrainConfig | None:
    """The run's config; None while the SCA run whose widths a scratch run needs is not done."""
    setup = dict(SETUPS[dataset])
    options, widths_of = RUNS[label]
    options = options(setup["epochs"]) if callable(options) else options
    kwargs = dict(setup.pop("model_kwargs", {}))
    if widths_of is not None:
        source = done.get(run_key(dataset, widths_of, seed))
        if source is None:
            return None
        kwargs[MODEL_WIDTH_ARG[setup["model"]]] = list(source["kept"].values())
    return TrainConfig(seed=seed, model_kwargs=kwargs, **setup, **options)


def run_one(config: TrainConfig) -> dict:
    start = time.perf_counter()
    result = train(config)
    meta = result.checkpoint.meta
    return {"last": meta["accuracy"]["last"], "best": meta["accuracy"]["best"],
            "kept": result.history[-1].kept, "keep_ratio": meta["keep_ratio"],
            "config": config.to_dict(), "seconds": round(time.perf_counter() - start, 1),
            # per epoch: test accuracy, channels kept, pruned and regrown by that epoch's update
            "history": [[round(h.test_accuracy, 2), h.kept_total, h.pruned, h.regrown] for h in result.history]}


def summarize(runs: dict) -> dict:
    """dataset -> label -> mean and standard deviation of the last-epoch accuracy, widths, seeds."""
    out: dict = {}
    for key, run in runs.items():
        dataset, label, _ = key.split("/")
        out.setdefault(dataset, {}).setdefault(label, []).append(run)
    table = {}
    for dataset, labels in out.items():
        table[dataset] = {}
        for label in RUNS:
            mine = labels.get(label)
            if not mine:
                continue
            accs = [r["last"] for r in mine]
            table[dataset][label] = {"last_mean": statistics.mean(accs),
                                     "last_sd": statistics.stdev(accs) if len(accs) > 1 else None,
                                     "seeds": len(accs), "kept": mine[0]["kept"],
                                     "keep_ratio": statistics.mean(r["keep_ratio"] for r in mine)}
    return table


def wide_markdown(table: dict) -> str:
    """Mean last-epoch accuracy: one row per method, one column per dataset and keep ratio."""
    methods = ["dense", "scratch", "scratch-tuned", "paper", "best", "tuned", "best-aug", "prune-only",
               "prune-only-tuned"]
    columns = [(d, k) for d in table for k in ("30", "20", "10")]
    lines = ["| method | " + " | ".join(f"{d} {k}%" for d, k in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for method in methods:
        cells = []
        for dataset, keep in columns:
            row = table[dataset].get("dense" if method == "dense" else f"{method}-{keep}")
            sd = "" if row is None or row["last_sd"] is None else f" ± {row['last_sd']:.1f}"
            cells.append("-" if row is None else f"{row['last_mean']:.1f}{sd}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def markdown(table: dict) -> str:
    lines = ["| dataset | run | last-epoch test acc % | sd | seeds | kept per layer (seed 0) |",
             "|---|---|---|---|---|---|"]
    for dataset, labels in table.items():
        for label, row in labels.items():
            sd = "-" if row["last_sd"] is None else f"{row['last_sd']:.1f}"
            kept = "-".join(str(v) for v in row["kept"].values())
            lines.append(f"| {dataset} | {label} | {row['last_mean']:.1f} | {sd} | {row['seeds']} | {kept} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/sca_study.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    report = json.loads(args.out.read_text()) if args.out.exists() else {"runs": {}}
    done = report["runs"]
    for seed in args.seeds:
        for dataset in args.datasets:
            for label in args.runs:
                key = run_key(dataset, label, seed)
                config = config_for(dataset, label, seed, done)
                if key in done or config is None:
                    continue
                done[key] = run_one(config)
                print(f"{key}: last {done[key]['last']:.2f}%  kept {list(done[key]['kept'].values())}  "
                      f"{done[key]['seconds']:.0f} s", flush=True)
                report.update(summary=summarize(done), setups=SETUPS,
                              machine={"cpus": os.cpu_count(), "threads": args.threads,
                                       "platform": platform.platform()})
                args.out.parent.mkdir(parents=True, exist_ok=True)
                args.out.write_text(json.dumps(report, indent=2))
                args.out.with_suffix(".md").write_text(wide_markdown(report["summary"]) + "\n"
                                                       + markdown(report["summary"]))
    print(wide_markdown(summarize(done)))


if __name__ == "__main__":
    main()
