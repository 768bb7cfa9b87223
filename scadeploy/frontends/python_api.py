"""The Python door checked like the CLI's: masks, example inputs and timesteps given to `scadeploy.compile`.

Each check raises the ScadeployError subclass, with the one-line message, that the CLI raises for the
same mistake in a file, so a user calling scadeploy from Python learns exactly what the CLI would say.
"""

from __future__ import annotations

import torch
from torch import nn

from scadeploy.errors import DataError, MaskError, ModelError
from scadeploy.frontends.checkpoint_schema import MAX_TIMESTEPS, validate_masks
from scadeploy.ir.graph import Encoding, Graph
from scadeploy.ir.ops import PRODUCER_OPS

RANK = {Encoding.DIRECT: 4, Encoding.SEQUENCE: 5}  # [N, C, H, W] frames; [T, N, C, H, W] sequences


def checked_model(model: object) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise ModelError(f"model must be a torch.nn.Module (a spikingjelly network), got {type(model).__name__}")
    return model


def checked_encoding(encoding: object) -> Encoding:
    """An Encoding from itself or its name ("direct", "sequence")."""
    if isinstance(encoding, Encoding):
        return encoding
    names = [e.value for e in Encoding]
    if encoding not in names:
        raise DataError(f"encoding must be one of {names}, got {encoding!r}",
                        "'direct' for frames [N, C, H, W], 'sequence' for [T, N, C, H, W]")
    return Encoding(encoding)


def checked_timesteps(timesteps: object) -> int:
    if isinstance(timesteps, bool) or not isinstance(timesteps, int) or not 1 <= timesteps <= MAX_TIMESTEPS:
        raise DataError(f"timesteps must be an integer in 1..{MAX_TIMESTEPS}, got {timesteps!r}")
    return timesteps


def checked_example_input(x: object, encoding: Encoding, timesteps: int) -> torch.Tensor:
    """A float32 tensor of the encoding's rank, finite, with at least one sample (0/1 integer or bool
    spikes are converted); a sequence must hold `timesteps` steps."""
    if not isinstance(x, torch.Tensor) or x.layout != torch.strided:
        raise DataError(f"example_input must be a dense torch.Tensor, got {type(x).__name__}")
    rank = RANK[encoding]
    layout = "[N, C, H, W]" if encoding is Encoding.DIRECT else "[T, N, C, H, W]"
    if x.dim() != rank:
        raise DataError(f"example_input has shape {list(x.shape)}, but {encoding.value} encoding needs rank {rank} "
                        f"{layout}", "pass encoding='sequence' for [T, N, C, H, W] inputs" if x.dim() == 5 else None)
    if x.is_complex() or x.is_quantized:
        raise DataError(f"example_input has dtype {x.dtype}; expected real numbers (float, integer or bool)")
    if x.numel() == 0:
        raise DataError(f"example_input of shape {list(x.shape)} holds no values", "give at least one sample")
    x = x.detach().to("cpu", torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise DataError("example_input holds NaN or infinite values", "pass finite inputs")
    if encoding is Encoding.SEQUENCE and x.shape[0] != timesteps:
        raise DataError(f"example_input has {x.shape[0]} time steps, but timesteps={timesteps}",
                        "the first axis of a sequence is time")
    return x


def checked_graph_masks(masks: object, graph: Graph) -> dict[str, torch.Tensor] | None:
    """Masks keyed by the graph's conv/linear names, 1-D over output channels, 0/1 of any dtype -> bool."""
    if masks is None:
        return None
    if not isinstance(masks, dict):
        raise MaskError(f"masks must be a dict of layer name -> 1-D tensor, got {type(masks).__name__}",
                        "or None to infer them from zeroed weights")
    weights = {f"{n.name}.weight": n.params["weight"] for n in graph.of_op(*PRODUCER_OPS)}
    unknown = [name for name in masks if f"{name}.weight" not in weights]
    if unknown:
        layers = ", ".join(n.name for n in graph.of_op(*PRODUCER_OPS))
        raise MaskError(f"masks name layers the model does not have: {', '.join(map(str, unknown))}",
                        f"its conv/linear layers are: {layers}")
    return validate_masks(masks, weights)
