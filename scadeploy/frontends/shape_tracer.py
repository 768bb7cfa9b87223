"""A torch.fx tracer specialised to one input shape, for models whose forward() asks for shapes.

Zoo models branch on their input's rank (`if x.ndim == 4:` in MS-ResNet's `_to_sequence`) and
read sizes (`x.shape[0]`, `x.flatten(2)` after `x.size(1)`); plain fx cannot trace that, since a
Proxy's rank is itself a Proxy. Here every traced value also carries its concrete value on an
example input of the given shape (zeros), computed module by module as the trace proceeds, and a
proxy answers `shape`, `ndim`, `size()`, `dim()`, `numel()`, `dtype` and `device` from it: control
flow on shapes evaluates, and the graph is the one this input shape takes. Control flow on tensor
values still fails, as in fx. The frontend also reads the concrete shapes to tell what a reshape
does to the per-sample layout and to check each converted node's shape.

spikingjelly's sequence containers (`SeqToANNContainer`, `MultiStepContainer`) apply their
children to every step; they are traced as that chain of children, each marked `PER_STEP`.
"""

from __future__ import annotations

import contextlib
import copy
import enum
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.fx
from spikingjelly.activation_based import base, functional, layer
from torch import nn
from torch.fx import _symbolic_trace

from scadeploy.errors import ScadeployError, UnsupportedError

EXAMPLE = "scadeploy_example"  # node.meta key: the node's value on the example input
PER_STEP = "scadeploy_per_step"  # node.meta key: a layer applied to each step by a sequence container
LEAD = "scadeploy_lead"  # node.meta key: the `Lead` of the node's value, set by the frontend
EXAMPLE_BATCH = 2  # not 1, so that a size-1 axis is never mistaken for the batch

# Tensor attributes and methods a proxy answers from its example value.
CONCRETE_ATTRIBUTES = frozenset({"shape", "ndim", "dtype", "device", "is_cuda", "layout"})
CONCRETE_METHODS = frozenset({"size", "dim", "ndimension", "numel", "nelement"})
SEQUENCE_CONTAINERS = (layer.SeqToANNContainer, layer.MultiStepContainer)


class Lead(enum.Enum):
    """The axes in front of the per-sample shape: a frame `[N, ...]` or a sequence `[T, N, ...]`."""

    FRAME = 1
    SEQUENCE = 2

    @property
    def rank(self) -> int:
        return self.value


class ShapeProxy(torch.fx.Proxy):
    """A proxy that answers shape questions from its node's example value (see the module docstring)."""

    def __getattr__(self, name: str) -> Any:
        node = self.__dict__.get("node")
        value = node.meta.get(EXAMPLE) if node is not None else None
        if isinstance(value, torch.Tensor) and (name in CONCRETE_ATTRIBUTES or name in CONCRETE_METHODS):
            return getattr(value, name)
        return super().__getattr__(name)

    def __len__(self) -> int:
        value = self.node.meta.get(EXAMPLE)
        if isinstance(value, torch.Tensor | tuple | list):
            return len(value)
        return super().__len__()


def example_of(node: torch.fx.Node) -> Any:
    return node.meta.get(EXAMPLE)


def scope_of(node: torch.fx.Node, root: nn.Module) -> str:
    """The user's module a node belongs to, as "'path' (Class)"; for a module call, that module."""
    if node.op == "call_module":
        return f"'{node.target}' ({type(root.get_submodule(node.target)).__name__})"
    stack = node.meta.get("nn_module_stack")
    if stack:
        path, cls = next(reversed(stack.values()))
        return f"'{path}' ({getattr(cls, '__name__', cls)})"
    return f"the model's forward() ({type(root).__name__})"


def enclosing_path(node: torch.fx.Node) -> str:
    """The module path a function call is made in ('' at the top level)."""
    stack = node.meta.get("nn_module_stack")
    return next(reversed(stack.values()))[0] if stack else ""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def user_frame(exc: BaseException) -> str | None:
    """'file.py:line in function' of the innermost frame outside torch that raised `exc`."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if "/torch/" not in f.filename and "/scadeploy/frontends/" not in f.filename]
    if not frames:
        return None
    f = frames[-1]
    return f"{Path(f.filename).name}:{f.lineno} in {f.name}"


def is_multi_step_only(m: nn.Module) -> bool:
    """A spikingjelly module that only runs on whole sequences (not a container of per-step layers)."""
    return isinstance(m, base.MultiStepModule) and not isinstance(m, SEQUENCE_CONTAINERS)


@dataclass(frozen=True)
class LeafPolicy:
    """What the frontend tells the tracer. `is_leaf(module)`: the module stays one call_module node;
    `refuse(module, path)`: may raise an UnsupportedError before a module is traced (one the frontend can
    never convert); `explain(module, path, value, per_step)`: the frontend's own error for a layer that
    cannot run on the traced value (a shape that does not fit, a layer on the wrong axes), or None."""

    is_leaf: Callable[[nn.Module], bool]
    refuse: Callable[[nn.Module, str], None]
    explain: Callable[[nn.Module, str, torch.Tensor, bool], ScadeployError | None]


class ShapeTracer(torch.fx.Tracer):
    """fx tracing with `ShapeProxy` values (see the module docstring), leaves as the policy says."""

    def __init__(self, example: torch.Tensor, step_mode: str, policy: LeafPolicy) -> None:
        super().__init__()
        self.example = example
        self.step_mode = step_mode
        self.policy = policy
        self._per_step = 0

    def proxy(self, node: torch.fx.Node) -> torch.fx.Proxy:
        return ShapeProxy(node, self)

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return self.policy.is_leaf(m) or super().is_leaf_module(m, qualname)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        path = self.path_of_module(m)
        self.policy.refuse(m, path)
        if isinstance(m, SEQUENCE_CONTAINERS):
            return super().call_module(m, lambda *a, **k: self._chain(m, *a, **k), args, kwargs)
        if self._per_step and self.step_mode == "m" and not self.is_leaf_module(m, path) \
                and not isinstance(m, nn.Sequential):
            raise UnsupportedError(f"'{path}' ({type(m).__name__}) sits in a sequence container, which runs it "
                                   "on every step; only layers and neurons are traced there")
        return super().call_module(m, forward, args, kwargs)

    def _chain(self, container: nn.Sequential, x: Any) -> Any:
        """A sequence container's children applied in order, each to every step."""
        self._per_step += 1
        try:
            for child in container:
                x = child(x)
        finally:
            self._per_step -= 1
        return x

    def create_proxy(self, kind: str, target: Any, args: tuple, kwargs: dict, name: str | None = None,
                     type_expr: Any | None = None, proxy_factory_fn: Callable | None = None) -> torch.fx.Proxy:
        proxy = super().create_proxy(kind, target, args, kwargs, name, type_expr, proxy_factory_fn)
        node = proxy.node
        node.meta[PER_STEP] = bool(self._per_step)
        node.meta[EXAMPLE] = self._evaluate(node)
        return proxy

    def _evaluate(self, node: torch.fx.Node) -> Any:
        """The node's value on the example input, from its arguments' values."""
        if node.op == "placeholder":
            return self.example if not any(n.op == "placeholder" for n in node.graph.nodes if n is not node) else None
        if node.op == "get_attr":
            with _untraced():
                return _fetch(self.root, str(node.target))
        args, kwargs = torch.fx.node.map_arg((node.args, node.kwargs), lambda n: n.meta.get(EXAMPLE))
        try:
            with torch.no_grad(), _untraced():
                if node.op == "call_module":
                    module = self.root.get_submodule(node.target)
                    if node.meta[PER_STEP] and self.step_mode == "m":
                        return functional.multi_step_forward(args[0], module)
                    return module(*args, **kwargs)
                if node.op == "call_method":
                    return getattr(args[0], node.target)(*args[1:], **kwargs)
                return node.target(*args, **kwargs)
        except ScadeployError:
            raise
        except Exception as exc:  # the model's own code on the example input: any error type
            if node.op == "call_module" and args and isinstance(args[0], torch.Tensor):
                with _untraced():
                    explained = self.policy.explain(self.root.get_submodule(node.target), str(node.target), args[0],
                                                    node.meta[PER_STEP])
                if explained is not None:
                    raise explained from exc
            shapes = [list(a.shape) for a in args if isinstance(a, torch.Tensor)]
            what = "" if node.op == "call_module" else f"function '{getattr(node.target, '__name__', node.target)}' "
            raise UnsupportedError(f"{scope_of(node, self.root)}: {what}cannot run on the traced value of shape "
                                   f"{shapes[0] if len(shapes) == 1 else shapes}: {_first_line(exc)}") from exc


def _untraced() -> contextlib.AbstractContextManager:
    """fx's patches (Module.__call__ and wrapped functions) lifted, so the model's own code runs as in eager."""
    return _symbolic_trace._maybe_revert_all_patches()


def _fetch(root: nn.Module, target: str) -> Any:
    value: Any = root
    for part in target.split("."):
        value = getattr(value, part)
    return value


def example_input(module: nn.Module, shape: tuple[int, ...], timesteps: int, step_mode: str) -> torch.Tensor:
    """Zeros `[N, *shape]` (single step) or `[T, N, *shape]` (multi-step), on the model's device and dtype."""
    tensor = next((t for t in (*module.parameters(), *module.buffers()) if t.is_floating_point()), None)
    lead = (EXAMPLE_BATCH,) if step_mode == "s" else (timesteps, EXAMPLE_BATCH)
    dtype = tensor.dtype if tensor is not None else torch.float32
    return torch.zeros(*lead, *shape, dtype=dtype, device=tensor.device if tensor is not None else None)


def trace(module: nn.Module, example: torch.Tensor, step_mode: str, policy: LeafPolicy) -> torch.fx.Graph:
    """The fx graph of `module` on `example` (see the module docstring); UnsupportedError if it cannot be traced."""
    tracer = ShapeTracer(example, step_mode, policy)
    try:
        return tracer.trace(module)
    except ScadeployError:
        raise
    except Exception as exc:  # fx raises many types for untraceable Python control flow
        where = user_frame(exc)
        raise UnsupportedError(f"torch.fx cannot trace the model: {_failing_scope(tracer, module)}: "
                               f"{_first_line(exc)}" + (f" (at {where})" if where else ""),
                               "remove data-dependent Python control flow from forward()") from exc
    finally:
        functional.reset_net(module)


def _failing_scope(tracer: ShapeTracer, root: nn.Module) -> str:
    """The module whose forward() was being traced when tracing failed (fx leaves its entry on the stack)."""
    if tracer.module_stack:
        path, cls = next(reversed(tracer.module_stack.values()))
        return f"'{path}' ({getattr(cls, '__name__', cls)})"
    return f"the model's forward() ({type(root).__name__})"


def step_mode_copy(model: nn.Module, step_mode: str) -> nn.Module:
    """An eval-mode deep copy of `model` in `step_mode`; UnsupportedError naming a module that refuses it."""
    module = copy.deepcopy(model).eval()
    try:
        functional.set_step_mode(module, step_mode)
    except ValueError as exc:
        path, m = next(((p, m) for p, m in module.named_modules() if isinstance(m, base.StepModule)
                        and step_mode not in m.supported_step_mode()), ("", module))
        raise UnsupportedError(f"'{path}' ({type(m).__name__}) cannot run in step mode '{step_mode}': "
                               f"{_first_line(exc)}") from exc
    functional.reset_net(module)
    return module
