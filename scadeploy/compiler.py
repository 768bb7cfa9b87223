"""The compile pipeline: model -> IR -> stripped IR -> per-target artifacts, with measured parity.

`compile_model` is the Python API for any spikingjelly model and masks; `compile_checkpoint`
(a scadeploy checkpoint) and `compile_user_model` (`--model MODULE:FACTORY` and a plain state_dict)
are what `scadeploy compile` runs. They write the manifest (`artifact/manifest.py`), the stripped and
masked graphs (`artifact/serialize.py`), the stripped checkpoint for built-in architectures, and each
target's files (every name from `artifact/layout.py`) into a
staging directory that is renamed into place only when everything succeeded. A target that refuses
the model (a layer it cannot lower, a model that does not fit it) costs only itself: it is recorded
under `refused` in the manifest with its reason and the others are written; only when every requested
target refuses is nothing written. The directory is self-contained: inspect, benchmark and simulate
read nothing else.
"""

from __future__ import annotations

import datetime
import importlib
import logging
import shutil
import tempfile
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import version as package_version
from pathlib import Path
from types import ModuleType

import torch
from torch import nn

from scadeploy.artifact.files import sha256_of
from scadeploy.artifact.layout import GRAPHS, MASKED_GRAPH, STRIPPED_GRAPH, Layout, graph_file
from scadeploy.artifact.manifest import Manifest, write_manifest
from scadeploy.artifact.manifest_parts import (
    BeforeAfter,
    CompiledTarget,
    CostSummary,
    DataSource,
    LayerCosts,
    ModelInfo,
    Refusal,
    Source,
)
from scadeploy.artifact.serialize import save_graph
from scadeploy.backends.torch_ref import sample_count
from scadeploy.data.samples import FRAMES, Samples, load_samples, random_samples
from scadeploy.errors import DataError, GraphError, OutputExistsError, ScadeployError, TargetError, UnsupportedError
from scadeploy.frontends import python_api
from scadeploy.frontends.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from scadeploy.frontends.trace import trace_model
from scadeploy.ir.agreement import Agreement
from scadeploy.ir.cost import layer_costs, total_dense_macs
from scadeploy.ir.graph import Encoding, Graph, Op
from scadeploy.ir.infer_masks import infer_masks
from scadeploy.ir.passes.deploy import deployable as deployable_graph
from scadeploy.ir.passes.strip_channels import StripReport, strip_channels
from scadeploy.models import MODEL_WIDTH_ARG, build_model
from scadeploy.parity import StripParity, compare_stripped, compare_traced
from scadeploy.targets import Target, load_target
from scadeploy.targets.registry import lookup_backend

log = logging.getLogger(__name__)

PARITY_SAMPLES = 16


@dataclass
class CompileResult:
    masked: Graph
    stripped: Graph
    report: StripReport
    parity: StripParity
    samples: torch.Tensor
    fidelity: Agreement | None = None  # the traced graph against the model (`parity.compare_traced`)
    inferred_masks: bool = False
    warnings: list[str] = field(default_factory=list)
    targets: dict[str, CompiledTarget] = field(default_factory=dict)
    refused: dict[str, Refusal] = field(default_factory=dict)

    @cached_property
    def deployable(self) -> Graph:
        """The stripped graph through the deploy passes (`ir/passes/deploy.py`): what every backend consumes.
        Computed once: the manifest's graph and every target read the same one."""
        return deployable_graph(self.stripped)


def backend_module(name: str) -> ModuleType:
    """The module that compiles for backend `name` (`targets.registry`), imported only when a target needs it."""
    return importlib.import_module(lookup_backend(name).module)


SensorSize = tuple[int, int, int]  # an event sensor's (width, height, polarities), tonic's order


def evaluation_samples(ckpt: Checkpoint, data: str | None = None, data_dir: str | None = None,
                       sensor_size: SensorSize | None = None) -> Samples:
    """`data` when given, else the checkpoint's dataset when it is available, else seeded uniform noise."""
    if data is not None:
        return checked_sensor_size(load_samples(data, data_dir, ckpt.timesteps, sensor_size), sensor_size)
    checked_sensor_size(None, sensor_size)
    dataset = ckpt.meta.get("dataset")
    if dataset:
        try:
            return load_samples(dataset, data_dir or ckpt.meta.get("data_dir"), ckpt.timesteps)
        except ScadeployError as exc:
            log.warning("dataset '%s' unavailable (%s); using random inputs", dataset, exc)
    return random_samples(tuple(ckpt.input_shape), PARITY_SAMPLES)


def encoding_of(samples: Samples) -> Encoding:
    return Encoding.DIRECT if samples.layout == FRAMES else Encoding.SEQUENCE


def compile_model(model: nn.Module, masks: dict[str, torch.Tensor] | None, example_input: torch.Tensor,
                  timesteps: int, encoding: Encoding = Encoding.DIRECT) -> CompileResult:
    """Trace `model`, check the trace against the model, strip the silent masked channels, measure parity.

    `example_input` is a batch of real inputs: frames `[N, C, H, W]` (direct encoding) or a sequence
    `[T, N, C, H, W]`. Masks map conv/linear names to bool[C_out] (True = kept); None infers them from
    the zeroed weights (see `ir/infer_masks.py`). Every argument is checked as the CLI checks files
    (`frontends/python_api.py`).
    """
    model = python_api.checked_model(model)
    encoding = python_api.checked_encoding(encoding)
    timesteps = python_api.checked_timesteps(timesteps)
    example_input = python_api.checked_example_input(example_input, encoding, timesteps)
    shape = tuple(example_input.shape[1:] if encoding is Encoding.DIRECT else example_input.shape[2:])
    masked = trace_model(model, shape, timesteps, encoding)
    try:
        fidelity = compare_traced(model, masked, example_input)
    except (RuntimeError, ValueError, IndexError) as exc:  # the model's own forward() on these inputs
        raise DataError(f"the model cannot run on inputs of shape {list(example_input.shape)}: "
                        f"{str(exc).strip().splitlines()[0][:200]}",
                        "check the data (or --input-shape) against the shape the model expects") from exc
    if not fidelity.passed:
        where = f", most at '{fidelity.worst_layer}'" if fidelity.worst_layer else ""
        raise UnsupportedError(
            f"the traced graph does not compute what the model computes ({fidelity.spike_mismatches} of "
            f"{fidelity.spikes_compared:,} spikes differ{where}; max |logit diff| {fidelity.max_logit_diff:.3g} "
            "in float64)", "the model's forward() does something the tracer cannot see (state, hooks or "
            "custom neuron code); use the layers listed by `scadeploy compile --help`")
    result = compile_graph(masked, masks, example_input)
    result.fidelity = fidelity
    return result


def compile_graph(masked: Graph, masks: dict[str, torch.Tensor] | None, example_input: torch.Tensor) -> CompileResult:
    """Strip a graph's silent masked channels (masks None: inferred) and measure masked-vs-stripped parity."""
    warnings = []
    masks = python_api.checked_graph_masks(masks, masked)
    inferred = masks is None
    if inferred:
        masks = infer_masks(masked)
        if not any(bool((~m).any()) for m in masks.values()):
            warnings.append("--masks auto found no masked channel (no zeroed filter with zeroed BN gamma and "
                            "beta); the model is compiled unstripped")
    stripped, report = strip_channels(masked, masks)
    parity = compare_stripped(masked, stripped, report.kept_index, example_input)
    if not parity.exact:  # the silence certificate promised equality: a broken invariant, not bad input
        raise GraphError(f"stripping changed what the network computes (float64: {parity.float64.spike_summary()}, "
                         f"max |logit diff| {parity.float64.max_logit_diff:.3g}; {parity.removed_channel_spikes} "
                         f"spikes in removed channels; float32: {parity.float32.spike_summary()})",
                         "this is a bug in scadeploy; please report it with the model")
    return CompileResult(masked, stripped, report, parity, example_input, None, inferred, warnings)


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


def cost_summary(masked: Graph, stripped: Graph, report: StripReport) -> CostSummary:
    before = {c.name: c for c in layer_costs(masked)}
    rows = []
    for after in layer_costs(stripped):
        row = before[after.name]
        masked_count = next((r.masked for r in report.layers if r.layer == after.name), 0)
        rows.append(LayerCosts(after.name, after.op, row.out_channels, after.out_channels, masked_count,
                               row.params, after.params, row.dense_macs, after.dense_macs))
    return CostSummary(tuple(rows), BeforeAfter(masked.num_params(), stripped.num_params()),
                       BeforeAfter(total_dense_macs(masked), total_dense_macs(stripped)))


def build_manifest(result: CompileResult, data: dict, source: dict | None = None) -> Manifest:
    """The manifest of a compile; `data` and `source` as `Samples.source` and the frontend describe them."""
    parity = {"stripped_vs_masked": result.parity.to_dict() | {"inputs": data.get("label", "given inputs")}}
    if result.fidelity is not None:
        parity["trace_vs_model"] = result.fidelity.to_dict()
    graph = result.masked
    return Manifest(
        scadeploy_version=package_version("scadeploy"),
        created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        model=ModelInfo(graph.timesteps, graph.input.attrs.encoding, tuple(graph.input.shape),
                        tuple(graph.output.shape)),
        source=None if source is None else Source.from_dict(source),
        data=DataSource.from_dict(data),
        graphs={key: graph_file(key) for key in GRAPHS},
        masks="inferred from zeroed weights" if result.inferred_masks else "given",
        costs=cost_summary(result.masked, result.stripped, result.report),
        kept_masked_channels=tuple(result.report.kept),
        parity=parity,
        targets=dict(result.targets),
        refused=dict(result.refused),
    )


def _check_distinct_backends(targets: list[Target]) -> None:
    seen: dict[str, str] = {}
    for target in targets:
        if target.backend in seen:
            raise TargetError(f"targets '{seen[target.backend]}' and '{target.name}' both write the "
                              f"{target.backend} files", "compile them into separate output directories")
        seen[target.backend] = target.name


def _check_targets(targets: list[Target]) -> None:
    """Fail before the slow part on a mistake in the request itself: two targets of one name or one
    backend (a fix to the request, not a refusal of the model). Their options were checked when read."""
    names = [t.name for t in targets]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TargetError(f"two targets are named '{twice[0]}'", "the manifest keys each target by its name: "
                          "rename one in its target file")
    _check_distinct_backends(targets)


def refusal(target: Target, error: ScadeployError) -> Refusal:
    """The manifest entry of a refused target: its backend, the reason in one line, and the hint if any."""
    hint = " ".join(error.hint.split()) if error.hint else None
    return Refusal(target.backend, " ".join(error.message.split()), hint)


def _accepted_targets(result: CompileResult, targets: list[Target], graph: Graph) -> list[Target]:
    """The targets that take the model; each refusal is recorded in `result.refused` with its reason.

    Raises when targets were asked for and every one refused: the request then produced nothing.
    """
    accepted = []
    errors: dict[str, ScadeployError] = {}
    for target in targets:  # checked before anything is written, each on its own
        try:
            backend_module(target.backend).check_supported(graph, target)
        except (UnsupportedError, TargetError) as exc:
            log.info("target %s refused: %s", target.name, exc.message)
            errors[target.name] = exc
            result.refused[target.name] = refusal(target, exc)
            continue
        accepted.append(target)
    if targets and not accepted:
        raise _nothing_compiled(errors)
    return accepted


def _nothing_compiled(errors: dict[str, ScadeployError]) -> ScadeployError:
    """The error of a compile whose every target refused: the one refusal itself, or all of them in one line."""
    if len(errors) == 1:
        return next(iter(errors.values()))
    reasons = "; ".join(f"{name}: {' '.join(exc.message.split())}" for name, exc in errors.items())
    return TargetError(f"every requested target refused the model ({reasons})",
                       "compile for a target that takes the model (docs/layers.md lists what each accepts)")


def _export_targets(result: CompileResult, targets: list[Target], staging: Path) -> None:
    """Lower the model to each target that takes it. A failed parity check inside an export still fails
    the whole compile: it is a wrong result, not a refusal."""
    graph = result.deployable
    result.targets.clear()  # each write describes its own DIR
    result.refused.clear()
    for target in _accepted_targets(result, targets, graph):
        log.info("exporting for target %s", target.name)
        section = backend_module(target.backend).export(graph, target, staging, result.samples)
        result.targets[target.name] = CompiledTarget.of(target.backend, section)


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
                    data: dict | None = None) -> Manifest:
    """Write the manifest, both graphs, `stripped.pt` (when given) and the files of every target that takes
    the model; the manifest's `refused` maps each target that did not to its reason. Atomic: DIR appears
    complete or not at all, and nothing is written when every requested target refuses or an export fails.

    `data` describes the inputs the parity was measured on (`Samples.source`); benchmark and
    simulate read their inputs from it unless given others.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not force:
        raise OutputExistsError(f"output directory '{out_dir}' already exists", "pass --force to replace it")
    targets = [load_target(name) for name in target_names]
    _check_targets(targets)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}.staging."))
    try:
        if stripped is not None:
            save_checkpoint(stripped, Layout(staging).stripped_checkpoint)
        save_graph(result.deployable, staging, STRIPPED_GRAPH)
        save_graph(result.masked, staging, MASKED_GRAPH)
        if data is None:  # inputs given from Python: keep them, so DIR stays self-contained
            data = _save_inputs(result, staging)
        _export_targets(result, targets, staging)
        manifest = build_manifest(result, data, source)
        write_manifest(staging, manifest)
        _publish(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _data_section(samples: Samples) -> dict:
    return samples.source | {"layout": samples.layout, "samples": samples.count,
                             "sample_shape": list(samples.sample_shape), "labels": samples.y is not None}


def _check_output(out_dir: Path, target_names: tuple[str, ...], force: bool) -> None:
    """Fail before the slow part: an existing DIR without --force, two targets of one backend, bad options."""
    if out_dir.exists() and not force:
        raise OutputExistsError(f"output directory '{out_dir}' already exists", "pass --force to replace it")
    _check_targets([load_target(name) for name in target_names])


def _save_inputs(result: CompileResult, staging: Path) -> dict:
    """Write the parity inputs into DIR as `inputs.npz`; return the manifest's data section for them."""
    import numpy as np

    x = result.samples.detach().cpu().float()
    inputs = Layout(staging).inputs
    np.savez(inputs, x=x.numpy())
    direct = result.masked.input.attrs.encoding is Encoding.DIRECT
    return {"kind": "compiled", "file": inputs.name, "label": "the inputs given to compile",
            "layout": FRAMES if direct else "sequence", "samples": sample_count(result.masked, x),
            "sample_shape": list(result.masked.input.shape), "labels": False}


def compile_checkpoint(ckpt_path: str | Path, out_dir: str | Path, target_names: tuple[str, ...] = (),
                       force: bool = False, data: str | None = None, data_dir: str | None = None,
                       sensor_size: SensorSize | None = None) -> tuple[CompileResult, Manifest]:
    """`scadeploy compile CKPT`: everything lands in `out_dir` at once, or nothing does."""
    ckpt_path, out_dir = Path(ckpt_path), Path(out_dir)
    _check_output(out_dir, target_names, force)
    ckpt = load_checkpoint(ckpt_path)
    sha = sha256_of(ckpt_path)
    samples = evaluation_samples(ckpt, data, data_dir, sensor_size)
    result = compile_model(ckpt.build(), ckpt.masks, samples.take(PARITY_SAMPLES).x, ckpt.timesteps,
                           encoding_of(samples))
    source = {"kind": "checkpoint", "path": str(ckpt_path.resolve()), "sha256": sha, "arch": ckpt.arch,
              "meta": ckpt.meta}
    manifest = write_artifacts(result, out_dir, target_names, force, source,
                               stripped_checkpoint(ckpt, result.stripped, sha), _data_section(samples))
    return result, manifest


def checked_sensor_size(samples: Samples | None, sensor_size: SensorSize | None) -> Samples | None:
    """A sensor size bins event recordings only; given with other data (or none) it is a mistake to say."""
    if sensor_size is not None and (samples is None or "events" not in samples.source):
        what = f"'{samples.describe()}' holds no event recordings" if samples is not None else "no --data was given"
        raise DataError(f"--sensor-size bins event recordings, but {what}",
                        "drop --sensor-size, or pass --data with structured x, y, t, p arrays (.npy / .npz)")
    return samples


def user_samples(data: str | None, data_dir: str | None, input_shape: tuple[int, ...] | None,
                 timesteps: int | None, sensor_size: SensorSize | None = None) -> Samples:
    """The inputs of an own-model compile: `--data`, else random frames of `--input-shape`."""
    if data is not None:
        return checked_sensor_size(load_samples(data, data_dir, timesteps, sensor_size), sensor_size)
    checked_sensor_size(None, sensor_size)
    if input_shape is None:
        raise DataError("a model given with --model needs --data (inputs for parity) or --input-shape C,H,W",
                        "e.g. --data inputs.npz, or --input-shape 2,34,34 for random frames")
    return random_samples(tuple(input_shape), PARITY_SAMPLES)


def compile_user_model(weights: str | Path, model_spec: str, out_dir: str | Path,
                       target_names: tuple[str, ...] = (), force: bool = False, masks: str = "auto",
                       data: str | None = None, data_dir: str | None = None,
                       input_shape: tuple[int, ...] | None = None,
                       timesteps: int | None = None,
                       sensor_size: SensorSize | None = None) -> tuple[CompileResult, Manifest]:
    """`scadeploy compile WEIGHTS --model MODULE:FACTORY`: a user's own model and plain state_dict."""
    from scadeploy.frontends.user_model import build_user_model, load_masks, load_weights

    weights, out_dir = Path(weights), Path(out_dir)
    _check_output(out_dir, target_names, force)
    samples = user_samples(data, data_dir, input_shape, timesteps, sensor_size)
    if timesteps is None:
        timesteps = samples.x.shape[0] if samples.layout != FRAMES else 4
    model = load_weights(build_user_model(model_spec), weights)
    given = None if masks == "auto" else load_masks(masks, model)
    result = compile_model(model, given, samples.take(PARITY_SAMPLES).x, timesteps, encoding_of(samples))
    source = {"kind": "state_dict", "path": str(weights.resolve()), "sha256": sha256_of(weights),
              "model": model_spec, "masks": masks}
    manifest = write_artifacts(result, out_dir, target_names, force, source, None, _data_section(samples))
    return result, manifest


def compile_nir(path: str | Path, out_dir: str | Path, target_names: tuple[str, ...] = (), force: bool = False,
                data: str | None = None, data_dir: str | None = None,
                timesteps: int | None = None, sensor_size: SensorSize | None = None) -> tuple[CompileResult, Manifest]:
    """`scadeploy compile model.nir`: a NIR graph from another framework, masks read off its zeroed channels.

    The graph read from the file is checked against spikingjelly's own NIR importer on the inputs
    (every neuron's spikes), recorded as the source parity, like the trace check of a torch model.
    """
    from scadeploy.backends.nir.peers import spikingjelly_parity
    from scadeploy.frontends.nir import nir_input_shape, nir_to_graph, read_nir

    path, out_dir = Path(path), Path(out_dir)
    _check_output(out_dir, target_names, force)
    nir_graph = read_nir(path)
    samples = user_samples(data, data_dir, nir_input_shape(nir_graph), timesteps, sensor_size)
    if timesteps is None:
        timesteps = samples.x.shape[0] if samples.layout != FRAMES else 4
    masked, dt = nir_to_graph(nir_graph, timesteps, encoding_of(samples))
    x = samples.take(PARITY_SAMPLES).x
    result = compile_graph(masked, None, x)
    source = {"kind": "nir", "path": str(path.resolve()), "sha256": sha256_of(path), "dt": dt,
              "nir_vs_spikingjelly": _peer_check(lambda: spikingjelly_parity(path, masked, x, dt).to_dict())}
    manifest = write_artifacts(result, out_dir, target_names, force, source, None, _data_section(samples))
    return result, manifest


def _peer_check(check) -> dict:
    """A peer's verdict, or why it could not give one (a peer may not read every graph scadeploy reads)."""
    try:
        return check()
    except (ValueError, NotImplementedError, RuntimeError, ScadeployError) as exc:
        return {"skipped": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}
