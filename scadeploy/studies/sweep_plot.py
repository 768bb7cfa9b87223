"""The sweep's figure: accuracy against SynOps and against latency, baselines marked, the Pareto front drawn.

Kept apart from `sweep.py` so the measuring code does not import matplotlib.
"""

from __future__ import annotations

from pathlib import Path

from scadeploy.measure.report import save_figure

# run kind -> (marker, colour, legend label)
STYLES = {
    "dense": ("*", "black", "dense"),
    "sca": ("o", "tab:blue", "SCA"),
    "prune-only": ("v", "tab:orange", "prune-only"),
    "scratch": ("s", "tab:green", "from scratch at SCA's widths"),
}
AXES = (("synops", "SynOps per sample (stripped network)", True), ("latency_ms", "ONNX Runtime latency, ms", False))


def save_sweep_plot(report: dict, path: str | Path) -> Path:
    """Write the two-panel PNG of a sweep report (the dict `run_sweep` returns)."""
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    runs = report["runs"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120, sharey=True)
    for ax, (cost, xlabel, logx) in zip(axes, AXES, strict=True):
        for kind, (marker, colour, legend) in STYLES.items():
            mine = [r for r in runs if r["kind"] == kind]
            if mine:
                ax.scatter([r[cost] for r in mine], [r["accuracy"] for r in mine], marker=marker, c=colour,
                           s=110 if kind == "dense" else 45, label=legend, zorder=3)
        for run in runs:
            ax.annotate(run["label"], (run[cost], run["accuracy"]), fontsize=7, xytext=(4, 3),
                        textcoords="offset points")
        by_label = {r["label"]: r for r in runs}
        front = [by_label[label] for label in report["pareto"][cost]]
        ax.step([r[cost] for r in front], [r["accuracy"] for r in front], where="post", c="grey", alpha=0.6,
                label="Pareto front", zorder=2)
        ax.set_xlabel(xlabel)
        if logx:
            ax.set_xscale("log")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel("last-epoch test accuracy, %")
    axes[0].legend(fontsize="small", loc="lower right")
    base = report["base"]
    fig.suptitle(f"SCA sweep: model {base['model']}, dataset {base['dataset']}, {base['epochs']} epochs, "
                 f"ranking {base['ranking']}, seed {base['seed']}")
    return save_figure(plt, fig, path)
