"""The checkpoint schema: every field's type, range and size, checked before anything is built from it.

A checkpoint is untrusted input. `checked_fields` turns the raw dict of `torch.load` into clean
Python values or raises one CheckpointError/MaskError naming the field; `check_footprint` then
builds the model on PyTorch's `meta` device (shapes only, no memory) and traces it, so a checkpoint
asking for absurd widths, inputs or time steps is refused before a single large tensor exists.

Limits (documented in the README's bad-input section):
- `timesteps` 1..MAX_TIMESTEPS; `input_shape` three ints (C, H, W), each 1..MAX_INPUT_SIDE;
  `num_classes` 1..MAX_CLASSES; model widths 1..MAX_WIDTH.
- the model: at most MAX_PARAMETERS parameters; its activations for one parity batch
  (PARITY_BATCH samples, T steps, float64, as `compile` runs it) at most MAX_ACTIVATION_BYTES.
- `arch.kwargs`, `neuron` and `meta`: JSON-like (None, bool, int, finite float, str, list, dict with
  str keys), at most MAX_JSON_ITEMS values, MAX_JSON_DEPTH levels deep, strings of MAX_STRING chars.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from scadeploy.errors import CheckpointError, MaskError
from scadeploy.ir.graph import Graph
from scadeploy.models import MODELS, NEURON_KINDS, build_model

MAX_TIMESTEPS = 1024
MAX_INPUT_SIDE = 4096
MAX_CLASSES = 100_000
MAX_WIDTH = 65_536
MAX_PARAMETERS = 200_000_000  # 800 MB of float32 weights; VGG-16 has 15 M
MAX_ACTIVATION_BYTES = 4 << 30
PARITY_BATCH = 16
MAX_JSON_ITEMS = 100_000
MAX_JSON_DEPTH = 12
MAX_STRING = 4096
JSON_SCALARS = (type(None), bool, int, float, str)


def checked_int(value: object, where: str, low: int, high: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise CheckpointError(f"checkpoint field {where} must be an integer in {low}..{high}, got {show(value)}")
    return value


def _number(value: object, where: str) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise CheckpointError(f"checkpoint field {where} must be a finite number, got {show(value)}")
    return float(value)


def show(value: object) -> str:
    text = repr(value) if isinstance(value, JSON_SCALARS) else type(value).__name__
    return text if len(text) <= 60 else text[:57] + "..."


def check_json_like(value: object, where: str) -> None:
    """None, bool, int, finite float, str, list/tuple and str-keyed dicts, bounded in size and depth."""
    budget = [MAX_JSON_ITEMS]

    def visit(item: object, path: str, depth: int) -> None:
        budget[0] -= 1
        if budget[0] < 0 or depth > MAX_JSON_DEPTH:
            raise CheckpointError(f"checkpoint field {where} is too large or too deeply nested "
                                  f"(at most {MAX_JSON_ITEMS} values, {MAX_JSON_DEPTH} levels)")
        if isinstance(item, float) and not math.isfinite(item):
            raise CheckpointError(f"checkpoint field {path} is {item}, expected a finite number")
        if isinstance(item, str) and len(item) > MAX_STRING:
            raise CheckpointError(f"checkpoint field {path} is a string of {len(item)} characters "
                                  f"(at most {MAX_STRING})")
        if isinstance(item, JSON_SCALARS):
            return
        if isinstance(item, list | tuple):
            for i, child in enumerate(item):
                visit(child, f"{path}[{i}]", depth + 1)
            return
        if isinstance(item, dict):
            for key, child in item.items():
                if not isinstance(key, str):
                    raise CheckpointError(f"checkpoint field {path} has a key {show(key)}, expected strings")
                visit(child, f"{path}.{key}", depth + 1)
            return
        raise CheckpointError(f"checkpoint field {path} holds a {type(item).__name__}, expected plain "
                              "data (numbers, strings, lists, dicts)")

    visit(value, where, 0)


def _widths(value: object, where: str) -> list:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 1024:
        raise CheckpointError(f"checkpoint field {where} must be a list of 1..1024 layer widths, got {show(value)}")
    return [checked_int(v, f"{where}[{i}]", 1, MAX_WIDTH) for i, v in enumerate(value)]


def _vgg_config(value: object, where: str) -> list:
    if not isinstance(value, list | tuple) or not 1 <= len(value) <= 1024:
        raise CheckpointError(f"checkpoint field {where} must be a list of widths and 'M', got {show(value)}")
    return [v if v == "M" else checked_int(v, f"{where}[{i}]", 1, MAX_WIDTH) for i, v in enumerate(value)]


def _neuron_kind(value: object, where: str) -> str:
    if value not in NEURON_KINDS:
        raise CheckpointError(f"unknown neuron kind {show(value)} in {where}",
                              f"choose one of {', '.join(NEURON_KINDS)}")
    return value


def _tau(value: object, where: str) -> float:
    tau = _number(value, where)
    if tau <= 1.0:
        raise CheckpointError(f"checkpoint field {where} must be above 1 (a LIF time constant), got {tau}")
    return tau


def _reset(value: object, where: str) -> float | None:
    return None if value is None else _number(value, where)


def _positive(value: object, where: str) -> int:
    return checked_int(value, where, 1, MAX_INPUT_SIDE * MAX_INPUT_SIDE)


# Constructor arguments of the built-in models, by name: each rule checks and normalizes one value.
KWARG_RULES: dict[str, Callable[[object, str], Any]] = {
    "num_classes": lambda v, w: checked_int(v, w, 1, MAX_CLASSES),
    "in_channels": lambda v, w: checked_int(v, w, 1, MAX_INPUT_SIDE),
    "input_size": lambda v, w: checked_int(v, w, 1, MAX_INPUT_SIDE),
    "hidden": lambda v, w: checked_int(v, w, 1, MAX_WIDTH),
    "widths": _widths,
    "block_widths": _widths,
    "stage_widths": _widths,
    "config": _vgg_config,
    "neuron": _neuron_kind,
    "tau": _tau,
    "v_threshold": _number,
    "v_reset": _reset,
}

_COMMON_KWARGS = ("num_classes", "in_channels", "input_size", "neuron", "tau", "v_threshold", "v_reset")
# The constructor arguments each built-in model takes: anything else in arch.kwargs is refused by name.
MODEL_KWARGS: dict[str, tuple[str, ...]] = {
    "digits": (*_COMMON_KWARGS, "widths"),
    "vgg16": (*_COMMON_KWARGS, "widths", "hidden", "config"),
    "vgg_mnist": (*_COMMON_KWARGS, "widths", "hidden", "config"),
    "vgg_mnist_wide": (*_COMMON_KWARGS, "widths", "hidden", "config"),
    "resnet18": (*_COMMON_KWARGS, "block_widths", "stage_widths"),
}


def checked_arch(arch: object) -> dict:
    """{"name": a built-in model, "kwargs": {argument: checked value}}."""
    if not isinstance(arch, dict) or not isinstance(arch.get("name"), str):
        raise CheckpointError("checkpoint field arch is malformed (needs a model name)")
    name, kwargs = arch["name"], arch.get("kwargs", {})
    if name not in MODELS:
        raise CheckpointError(f"unknown model {show(name)} in arch.name", f"choose one of {', '.join(MODELS)}")
    if not isinstance(kwargs, dict):
        raise CheckpointError(f"checkpoint field arch.kwargs must be a dict, got {show(kwargs)}")
    check_json_like(kwargs, "arch.kwargs")
    allowed = MODEL_KWARGS[name]
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise CheckpointError(f"arch.kwargs has unknown arguments {unknown} for model '{name}'",
                              f"known arguments: {', '.join(allowed)}")
    return {"name": name, "kwargs": {k: KWARG_RULES[k](v, f"arch.kwargs.{k}") for k, v in kwargs.items()}}


def checked_input_shape(value: object) -> tuple[int, int, int]:
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise CheckpointError(f"checkpoint field input_shape must be [C, H, W], got {show(value)}")
    c, h, w = (checked_int(v, f"input_shape[{i}]", 1, MAX_INPUT_SIDE) for i, v in enumerate(value))
    return c, h, w


def checked_state_dict(value: object) -> dict[str, torch.Tensor]:
    """A dict of parameter name -> dense, finite tensor (floating point, or integer BN counters)."""
    if not isinstance(value, dict):
        raise CheckpointError(f"checkpoint field state_dict must be a dict, got {show(value)}")
    for key, tensor in value.items():
        if not isinstance(key, str):
            raise CheckpointError(f"state_dict has a key {show(key)}, expected parameter names")
        if not isinstance(tensor, torch.Tensor) or tensor.layout != torch.strided:
            raise CheckpointError(f"state_dict['{key}'] is a {type(tensor).__name__}, expected a dense tensor")
        if key.endswith("num_batches_tracked"):
            if tensor.dtype != torch.int64 or tensor.dim() != 0:
                raise CheckpointError(f"state_dict['{key}'] must be an int64 scalar, got {tensor.dtype}")
        elif not tensor.is_floating_point():
            raise CheckpointError(f"state_dict['{key}'] has dtype {tensor.dtype}, expected a floating-point type")
        elif not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"state_dict['{key}'] holds NaN or infinite values",
                                  "the training diverged: use an earlier checkpoint")
    return dict(value)


def checked_masks(value: object, state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    if not isinstance(value, dict):
        raise MaskError(f"checkpoint field masks must be a dict of layer name -> mask, got {show(value)}")
    if any(not isinstance(k, str) for k in value):
        raise MaskError("checkpoint field masks has a key that is not a layer name")
    return validate_masks(value, state_dict)


def validate_masks(masks: dict[str, torch.Tensor], state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Each mask names a conv/linear layer and is 1-D over its output channels; returned as bool.

    Integer and float masks holding only 0 and 1 are accepted (a common way to save them) and
    converted here, so nothing downstream sees `~mask` of an integer tensor.
    """
    checked = {}
    for name, mask in masks.items():
        weight = state_dict.get(f"{name}.weight")
        if not isinstance(weight, torch.Tensor) or weight.dim() not in (2, 4):
            raise MaskError(f"mask '{name}' names no layer with weights (a conv or linear)",
                            "masks are keyed by the conv module's name, e.g. 'features.conv1'")
        if (not isinstance(mask, torch.Tensor) or mask.layout != torch.strided or mask.dim() != 1
                or mask.numel() != weight.shape[0]):
            got = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
            raise MaskError(f"mask '{name}' has shape {got}, expected ({weight.shape[0]},) for its "
                            f"{weight.shape[0]} output channels")
        checked[name] = _as_bool(name, mask)
        if not bool(checked[name].any()):
            raise MaskError(f"mask '{name}' removes every channel of the layer", "keep at least one channel")
    return checked


def _as_bool(name: str, mask: torch.Tensor) -> torch.Tensor:
    if mask.dtype == torch.bool:
        return mask
    if mask.is_complex() or not bool(((mask == 0) | (mask == 1)).all()):
        raise MaskError(f"mask '{name}' ({mask.dtype}) holds values other than 0 and 1",
                        "a mask is True/1 for a kept channel and False/0 for a pruned one")
    return mask != 0


def _plain_dict(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise CheckpointError(f"checkpoint field {where} must be a dict, got {show(value)}")
    check_json_like(value, where)
    return dict(value)


def checked_meta(value: object) -> dict:
    """Plain data; the keys compile and simulate read (dataset, data_dir) are strings."""
    meta = _plain_dict(value, "meta")
    for key in ("dataset", "data_dir"):
        if meta.get(key) is not None and not isinstance(meta[key], str):
            raise CheckpointError(f"checkpoint field meta.{key} must be a string, got {show(meta[key])}")
    return meta


def checked_neuron(value: object) -> dict:
    return _plain_dict(value, "neuron")


def check_footprint(arch: dict, state_dict: dict[str, torch.Tensor], input_shape: tuple[int, ...],
                    timesteps: int, num_classes: int) -> Graph:
    """Build and trace the model on the meta device; refuse it when it is too large or does not fit the weights.

    Returns the traced shape-only graph (its parameters live on the meta device).
    """
    from scadeploy.frontends.trace import trace_model

    name = arch["name"]
    try:
        with torch.device("meta"):
            model = build_model(name, **arch["kwargs"])
    except (RuntimeError, OverflowError) as exc:
        raise CheckpointError(f"model '{name}' with {arch['kwargs']} has sizes no tensor can hold") from exc
    params = sum(p.numel() for p in model.parameters())
    if params > MAX_PARAMETERS:
        raise CheckpointError(f"model '{name}' would have {params:,} parameters, more than the limit of "
                              f"{MAX_PARAMETERS:,}", "check arch.kwargs (widths, input_size)")
    _check_weights_fit(name, model.state_dict(), state_dict)
    try:
        graph = trace_model(model, input_shape, timesteps)
    except RuntimeError as exc:
        raise CheckpointError(f"model '{name}' cannot run on input {list(input_shape)}: "
                              f"{str(exc).splitlines()[0]}") from exc
    values = sum(math.prod(node.shape) for node in graph.nodes)
    activation_bytes = values * timesteps * PARITY_BATCH * 8
    if activation_bytes > MAX_ACTIVATION_BYTES:
        raise CheckpointError(f"model '{name}' on input {list(input_shape)} with T={timesteps} needs "
                              f"{activation_bytes / 2**30:,.1f} GiB of activations for {PARITY_BATCH} samples, "
                              f"more than the limit of {MAX_ACTIVATION_BYTES / 2**30:.0f} GiB",
                              "use fewer time steps, a smaller input or narrower layers")
    outputs = graph.output.shape
    if outputs != (num_classes,):
        raise CheckpointError(f"checkpoint field num_classes is {num_classes}, but the model outputs {list(outputs)}")
    return graph


def _check_weights_fit(name: str, expected: dict[str, torch.Tensor], given: dict[str, torch.Tensor]) -> None:
    missing = sorted(set(expected) - set(given))
    extra = sorted(set(given) - set(expected))
    if missing or extra:
        raise CheckpointError(f"the weights do not fit model '{name}': missing {missing[:5]}, unexpected {extra[:5]}",
                              "the state_dict must come from the model that arch describes")
    for key, tensor in expected.items():
        if tuple(given[key].shape) != tuple(tensor.shape):
            raise CheckpointError(f"the weights do not fit model '{name}': state_dict['{key}'] has shape "
                                  f"{tuple(given[key].shape)}, the model expects {tuple(tensor.shape)}")
