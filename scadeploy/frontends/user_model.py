"""A user's own spikingjelly model: `MODULE:FACTORY` import paths, plain state_dict weights, masks.

`MODULE` is a dotted import path (`pkg.mod:build`, like uvicorn's `app:app`) or a Python file
(`path/to/net.py:build`); `FACTORY` is a callable returning the multi-step `nn.Module`. Its code
runs only here, at compile time: the compiled directory never needs it again.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from scadeploy.errors import CheckpointError, MaskError, ModelError
from scadeploy.frontends.checkpoint import read_torch_file
from scadeploy.frontends.checkpoint_schema import checked_state_dict, validate_masks


def load_factory(spec: str) -> Callable[[], object]:
    """The callable named by `MODULE:FACTORY`."""
    module_part, sep, attr = spec.rpartition(":")
    if not sep or not module_part or not attr.isidentifier():
        raise ModelError(f"--model '{spec}' is not MODULE:FACTORY", "e.g. mypkg.nets:build or nets/my_net.py:build")
    try:
        module = _import_file(Path(module_part)) if module_part.endswith(".py") else importlib.import_module(
            module_part)
    except ModelError:
        raise
    except Exception as exc:  # the user's module may raise anything at import
        raise ModelError(f"cannot import '{module_part}': {type(exc).__name__}: {exc}",
                         "check the module path (and PYTHONPATH) and that the module imports on its own") from exc
    factory = getattr(module, attr, None)
    if factory is None:
        raise ModelError(f"'{module_part}' has no attribute '{attr}'", "name a function that builds the model")
    if not callable(factory):
        raise ModelError(f"'{spec}' is a {type(factory).__name__}, not callable",
                         "name a function or class that returns the nn.Module")
    return factory


def _import_file(path: Path) -> object:
    if not path.is_file():
        raise ModelError(f"model file '{path}' does not exist", "check the path before ':'")
    name = f"scadeploy_user_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def build_user_model(spec: str) -> nn.Module:
    """Call the factory and check that it returned an `nn.Module`."""
    factory = load_factory(spec)
    try:
        model = factory()
    except Exception as exc:  # the user's factory may raise anything
        raise ModelError(f"'{spec}' raised {type(exc).__name__}: {exc}", "call it in Python to see why") from exc
    if not isinstance(model, nn.Module):
        raise ModelError(f"'{spec}' returned a {type(model).__name__}, not a torch nn.Module",
                         "the factory must return the multi-step spikingjelly model")
    return model


def _load_dict(path: Path, what: str) -> dict:
    raw = read_torch_file(path, what)
    if not isinstance(raw, dict) or not all(isinstance(k, str) for k in raw):
        raise CheckpointError(f"'{path}' holds a {type(raw).__name__}, not a dict keyed by names",
                              f"save the {what} as a dict, e.g. torch.save(model.state_dict(), path)")
    return raw


def load_weights(model: nn.Module, path: str | Path) -> nn.Module:
    """Load a plain state_dict (weights_only) into `model`, strictly; the model comes back in eval mode."""
    path = Path(path)
    raw = _load_dict(path, "weights")
    if raw.get("format") == "scadeploy.checkpoint":
        raise CheckpointError(f"'{path}' is a scadeploy checkpoint, not a plain state_dict",
                              "compile it without --model")
    state = checked_state_dict(raw)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        detail = " ".join(line.strip() for line in str(exc).strip().splitlines()[:3])
        raise CheckpointError(f"the weights in '{path}' do not fit the model: {detail[:300]}",
                              "save model.state_dict() of the same architecture the factory builds") from exc
    return model.eval()


def load_masks(path: str | Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """A masks file (torch weights_only or .npz): layer name -> 0/1 or bool vector, True = kept; checked
    against the model's layers like a checkpoint's masks."""
    path = Path(path)
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                raw = {k: torch.from_numpy(archive[k]) for k in archive.files}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
            raise MaskError(f"'{path}' is not a readable .npz masks file ({exc})") from exc
    else:
        raw = _load_dict(path, "masks")
    return validate_masks(raw, model.state_dict())
