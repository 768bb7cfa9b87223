"""Each backend's options, declared once: the [onnx], [openvino], [lava] and [nir] tables of a target.

A field carries its default, kind and range (`options.py`); `load_target` reads a table into its
class with `parse_table`, and the backends take the typed instance from `Target.options`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scadeploy.targets import lava_limits as lava
from scadeploy.targets.options import choice, flag, integer, real, table

OPSETS = (17, 21)  # the ONNX opsets scadeploy's lowering is written and tested for
MAX_COUNT = 2**40  # a bound for counts in resource tables, far above any real system


def _opset() -> Any:
    return integer(OPSETS[0], *OPSETS, why=f"scadeploy writes ONNX opsets {OPSETS[0]}..{OPSETS[1]}")


def _threads() -> Any:
    return integer(0, 0, 1024, why="0: one thread per physical core")


def _align_channels(default: int) -> Any:
    return integer(default, 1, 256, why="conv channels are padded to a multiple of this (8 suits AVX2 CPUs)")


def _parity_tolerance() -> Any:
    return real(1e-4, 0.0, 1e3, why="the largest |logit difference| against the torch reference")


@dataclass(frozen=True)
class OnnxOptions:
    """[onnx]: the opset written and the ONNX Runtime session that parity is measured under."""

    opset: int = _opset()
    provider: str = choice("cpu", ("cpu", "cuda"), why="ONNX Runtime's CPU or CUDA execution provider")
    intra_op_num_threads: int = _threads()
    graph_optimization_level: str = choice("all", ("disable", "basic", "extended", "all"))
    align_channels: int = _align_channels(1)
    allow_spinning: bool = flag(True, why="idle threads busy-wait (ONNX Runtime's default); false suits shared CPUs")
    parity_tolerance: float = _parity_tolerance()


@dataclass(frozen=True)
class OpenVinoOptions:
    """[openvino]: the CPU plugin settings the saved IR is compiled and measured under."""

    opset: int = _opset()
    precision: str = choice("f32", ("f32", "bf16"), why="bf16 is faster on CPUs with bf16 units but flips spikes")
    performance_hint: str = choice("LATENCY", ("LATENCY", "THROUGHPUT"))
    inference_num_threads: int = _threads()
    align_channels: int = _align_channels(8)
    parity_tolerance: float = _parity_tolerance()


def _count(default: int) -> Any:
    return integer(default, 1, MAX_COUNT)


@dataclass(frozen=True)
class LavaResources:
    """[lava.resources]: planning estimates from Intel's public Loihi 2 figures, not a hardware mapper."""

    cores_per_chip: int = _count(128)
    chips: int = _count(1)
    neurons_per_core: int = _count(8192)
    synapses_per_core: int = _count(900_000)


@dataclass(frozen=True)
class LavaOptions:
    """[lava]: the fixed-point widths the quantizer must keep (the defaults are Loihi 2's), the parity
    sample count and the resource limits. The lows keep at least one nonzero level."""

    weight_bits: int = integer(lava.WEIGHT_BITS, 2, lava.WEIGHT_BITS,
                               why=f"Lava's synapses hold 8-bit weights: lava-dl netx keeps |w| <= {lava.WEIGHT_MAX} "
                                   "and clips wider ones")
    bias_bits: int = integer(lava.BIAS_BITS, 2, lava.BIAS_BITS, why="Lava's LIF holds bias_mant in 13 signed bits")
    threshold_bits: int = integer(lava.VTH_BITS, 2, lava.VTH_BITS, why="Lava's LIF holds vth in 17 unsigned bits")
    state_bits: int = integer(lava.STATE_BITS, 8, lava.STATE_BITS, why="Lava's LIF holds u and v in 24 signed bits")
    input_bits: int = integer(8, 1, lava.INPUT_BITS,
                              why="a graded message carries the value and its sign in Lava's 24-bit payload")
    parity_samples: int = integer(16, 1, 100_000, why="inputs the emulator runs against the float reference")
    resources: LavaResources = table(LavaResources)

    @property
    def weight_max(self) -> int:
        return lava.weight_max(self.weight_bits)

    @property
    def bias_max(self) -> int:
        return lava.signed_max(self.bias_bits)

    @property
    def vth_max(self) -> int:
        return lava.unsigned_max(self.threshold_bits)

    @property
    def input_max(self) -> int:
        return lava.unsigned_max(self.input_bits)

    @property
    def activation_max(self) -> int:
        """Largest synaptic input a with `a << 6` inside the signed state."""
        return lava.activation_max(self.state_bits)


@dataclass(frozen=True)
class NirOptions:
    """[nir]: the time step recorded in model.nir and the inputs spikingjelly's importer is measured on."""

    dt: float = real(1e-4, 0.0, 1.0, why="seconds per time step (the default is ir.nir_conventions.DEFAULT_DT)")
    parity_samples: int = integer(16, 1, 4096)


BackendOptions = OnnxOptions | OpenVinoOptions | LavaOptions | NirOptions
