"""The compile pipeline: checkpoint -> IR -> stripped IR -> per-target artifacts, with measured parity.

`compile_model` is the Python API for any spikingjelly model and masks; `compile_checkpoint`
is what `scadeploy compile` runs: it writes `stripped.pt`, `manifest.json` and each target's
files into a staging directory that is renamed into place only when everything succeeded.
"""

from __future__ import annotations

import datetime
import importlib
import json
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from scadeploy import __version__
from scadeploy.checkpoint import Checkpoint, load_checkpoint, save_checkpoint, sha256_of
from scadeploy.errors import OutputExistsError, ScadeployError, TargetError
from scadeploy.ir.cost import layer_costs, total_dense_macs
from scadeploy.ir.graph import Graph, Op
from scadeploy.ir.passes.fold_batchnorm import fold_batchnorm
from scadeploy.ir.passes.strip_channels import StripReport, strip_channels
from scadeploy.ir.trace import trace_model
from scadeploy.models import MODEL_WIDTH_ARG, build_model
from scadeploy.parity import StripParity, compare_stripped
from scadeploy.targets import Target, load_target

log = logging.getLogger(__name__)

# Backends are imported only when a target needs them (Lava changes process-wide settings at import).
BACKEND_MODULES = {"onnx": "scadeploy.backends.onnx.export", "lava": "scadeploy.backends.lava.export"}
PARITY_SAMPLES = 16


@dataclass
class CompileResult:
    masked: Graph
    stripped: Graph
    report: StripReport
    parity: StripParity
    samples: torch.Tensor
    targets: dict[str, dict] = field(default_factory=dict)

    @property
    def deployable(self) -> Graph:
        """The stripped graph with BN folded: what every backend consumes."""
        return fold_batchnorm(self.stripped)


def backend_module(name: str) -> ModuleType:
    return importlib.import_module(BACKEND_MODULES[name])


def evaluation_samples(ckpt: Checkpoint, count: int = PARITY_SAMPLES) -> tuple[torch.Tensor, str]:
    """Real inputs from the checkpoint's dataset when it is available, else seeded uniform noise."""
    dataset = ckpt.meta.get("dataset")
    if dataset:
        try:
            from scadeploy.data.datasets import load_dataset

            images = load_dataset(dataset, train=False, data_dir=ckpt.meta.get("data_dir")).tensors[0]
            return images[:count].float(), f"{dataset} test split"
        except (ImportError, ScadeployError) as exc:
            log.warning("dataset '%s' unavailable (%s); using random inputs", dataset, exc)
    generator = torch.Generator().manual_seed(0)
    return torch.rand(count, *ckpt.input_shape, generator=generator), "uniform random inputs"


def compile_model(model: nn.Module, masks: dict[str, torch.Tensor], example_input: torch.Tensor,
                  timesteps: int) -> CompileResult:
    """Trace `model`, strip the silent masked channels and measure masked-vs-stripped parity.

    `example_input` is a batch of real frames `[N, C, H, W]`; masks map conv names to bool[C_out].
    """
    masked = trace_model(model, tuple(example_input.shape[1:]), timesteps)
    stripped, report = strip_channels(masked, masks)
    parity = compare_stripped(masked, stripped, report.kept_index, example_input)
    return CompileResult(masked, stripped, report, parity, example_input)


def stripped_checkpoint(ckpt: Checkpoint, stripped: Graph, source_sha256: str) -> Checkpoint:
    """The stripped model as a checkpoint of the same architecture with smaller widths."""
    name = ckpt.arch["name"]
    kwargs = dict(ckpt.arch.get("kwargs", {}))
    model = build_model(name, **kwargs)
    kwargs[MODEL_WIDTH_ARG[name]] = [stripped[u.conv].shape[0] for u in model.prunable_units()]
    model = build_model(name, **kwargs)
    modules = dict(model.named_modules())
    with torch.no_grad():
        for node in stripped.of_op(Op.CONV2D, Op.LINEAR, Op.BATCHNORM):
            module = modules[node.name]
            for key, value in node.params.items():
                getattr(module, key).copy_(value)
    masks = {u.conv: torch.ones(stripped[u.conv].shape[0], dtype=torch.bool) for u in model.prunable_units()}
    meta = dict(ckpt.meta) | {"stripped_from": source_sha256}
    return Checkpoint({"name": name, "kwargs": kwargs}, model.state_dict(), masks, ckpt.timesteps,
                      ckpt.input_shape, ckpt.num_classes, ckpt.neuron, meta)


def cost_summary(masked: Graph, stripped: Graph, report: StripReport) -> dict:
    before = {c.name: c for c in layer_costs(masked)}
    rows = []
    for after in layer_costs(stripped):
        row = before[after.name]
        masked_count = next((r.masked for r in report.layers if r.layer == after.name), 0)
        rows.append({"layer": after.name, "op": after.op, "channels_before": row.out_channels,
                     "channels_after": after.out_channels, "masked": masked_count,
                     "params_before": row.params, "params_after": after.params,
                     "dense_macs_before": row.dense_macs, "dense_macs_after": after.dense_macs})
    return {
        "layers": rows,
        "params": {"before": masked.num_params(), "after": stripped.num_params()},
        "dense_macs_per_step": {"before": total_dense_macs(masked), "after": total_dense_macs(stripped)},
    }


def build_manifest(result: CompileResult, samples_label: str, source: dict | None = None) -> dict:
    return {
        "scadeploy": __version__,
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "source": source,
        "timesteps": result.masked.timesteps,
        "input_shape": list(result.masked.input.shape),
        **cost_summary(result.masked, result.stripped, result.report),
        "kept_masked_channels": result.report.to_dict()["kept_masked_channels"],
        "parity": {"stripped_vs_masked": result.parity.to_dict() | {"inputs": samples_label}},
        "targets": result.targets,
    }


def _check_distinct_backends(targets: list[Target]) -> None:
    seen: dict[str, str] = {}
    for target in targets:
        if target.backend in seen:
            raise TargetError(f"targets '{seen[target.backend]}' and '{target.name}' both write the "
                              f"{target.backend} files", "compile them into separate output directories")
        seen[target.backend] = target.name


def _export_targets(result: CompileResult, targets: list[Target], staging: Path) -> None:
    modules = {t.name: backend_module(t.backend) for t in targets}
    graph = result.deployable
    for target in targets:  # check every target before writing anything
        modules[target.name].check_supported(graph, target)
    for target in targets:
        log.info("exporting for target %s", target.name)
        section = modules[target.name].export(graph, target, staging, result.samples)
        result.targets[target.name] = {"backend": target.backend} | section


def _publish(staging: Path, out_dir: Path) -> None:
    """Move the finished staging directory into place (replacing an old one only now)."""
    if out_dir.exists():
        trash = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.old."))
        out_dir.rename(trash / out_dir.name)
        staging.rename(out_dir)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        staging.rename(out_dir)


def write_artifacts(result: CompileResult, out_dir: str | Path, target_names: tuple[str, ...] = (),
                    force: bool = False, source: dict | None = None, stripped: Checkpoint | None = None,
                    samples_label: str = "given inputs") -> dict:
    """Write the manifest, `stripped.pt` (when given) and every target's files; all at once or nothing."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise OutputExistsError(f"output directory '{out_dir}' already exists", "pass --force to replace it")
    targets = [load_target(name) for name in target_names]
    _check_distinct_backends(targets)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging."))
    try:
        if stripped is not None:
            save_checkpoint(stripped, staging / "stripped.pt")
        _export_targets(result, targets, staging)
        manifest = build_manifest(result, samples_label, source)
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
        _publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def compile_checkpoint(ckpt_path: str | Path, out_dir: str | Path, target_names: tuple[str, ...] = (),
                       force: bool = False) -> tuple[CompileResult, dict]:
    """`scadeploy compile`: everything lands in `out_dir` at once, or nothing does."""
    ckpt_path, out_dir = Path(ckpt_path), Path(out_dir)
    if out_dir.exists() and not force:
        raise OutputExistsError(f"output directory '{out_dir}' already exists", "pass --force to replace it")
    _check_distinct_backends([load_target(name) for name in target_names])  # fail before the slow part
    ckpt = load_checkpoint(ckpt_path)
    sha = sha256_of(ckpt_path)
    samples, label = evaluation_samples(ckpt)
    result = compile_model(ckpt.build(), ckpt.masks, samples, ckpt.timesteps)
    source = {"path": str(ckpt_path.resolve()), "sha256": sha, "arch": ckpt.arch, "meta": ckpt.meta}
    manifest = write_artifacts(result, out_dir, target_names, force, source,
                               stripped_checkpoint(ckpt, result.stripped, sha), label)
    return result, manifest
