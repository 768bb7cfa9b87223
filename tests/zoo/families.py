"""The spikingjelly 2.0 model zoo as acceptance cases: build, prune SCA-style, compile, and judge each target.

Every case builds one zoo network (seeded), gives its batch norms realistic eval statistics, zeroes
about half of every conv's output channels the way SCA leaves them (filter, bias, and the following
BN's gamma and beta), scales the layer driving each neuron so that every neuron layer spikes on the
inputs (random weights leave deep layers silent, and parity through silence proves nothing), and
writes what a user would bring: `weights.pt` (a plain state_dict), a factory file with `build()`,
and `inputs.npz` for `--data` (frames, binary events, or tonic-style recordings). `run_case` then
drives the CLI (compile to every target, then inspect, benchmark and simulate), and
`compile_problems`, `target_problems` and `tool_problems` say what misses the case's expectation.
Per target:

- `MUST`: the target compiles and its parity passes (ONNX vs torch, Lava's fixed point vs the
  integer graph, spikingjelly's NIR importer vs torch);
- `REFUSE`: the target is refused with a one-line reason naming a node or module (the operations
  cannot be carried there, e.g. Lava has no analog max pooling);
- `ANY`: either of the two, whichever the implementation chose.

A whole-model refusal (exit code 2, one `error:` line, no traceback) is expected where the model
cannot be traced at all (transformers, MASNN's cross-time attention).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from spikingjelly.activation_based import functional, neuron
from torch import nn

TARGETS = ("onnx-cpu", "loihi2-sim", "nir")
MUST, REFUSE, ANY = "must compile", "must refuse", "compile or refuse"
ALL_MUST = {target: MUST for target in TARGETS}
PRUNED_FRACTION = 0.5
BENCHMARK_RUNNERS = ("onnx:stripped",)
SIMULATE_SAMPLES = 2
LOGIT_TOLERANCE = 1e-4
ACTIVITY_TARGET = 1.25  # a neuron's input reaches this many thresholds at its 90th percentile
QUANTILE_MAX = 1 << 22
AFFINE = (nn.Conv2d, nn.Linear, nn.modules.batchnorm._BatchNorm)

# Features other engineers are landing; a case (or one of its targets) that needs one is xfail(strict)
# until it is in. Remove an entry here once its feature has landed and the cases pass.
PENDING: dict[str, str] = {}  # key -> the feature, e.g. "voting": "VotingLayer is not in yet"
# An event recording as tonic's datasets store it: one structured array per sample, sorted by time.
TONIC_DTYPE = np.dtype([("x", np.int16), ("y", np.int16), ("p", bool), ("t", np.int64)])
EVENTS_PER_RECORDING = 3000
RECORDING_US = 100_000


@dataclass(frozen=True)
class Case:
    """One zoo network at one input size, what each target must do with it, and what is not in yet."""

    name: str
    imports: str  # the `from spikingjelly... import ...` line of the factory file
    constructor: str  # the expression building the network
    shape: tuple[int, int, int]
    classes: int = 10
    events: bool = False  # inputs are a [T, N, C, H, W] sequence of binary events instead of frames
    recordings: bool = False  # inputs are tonic-style event recordings, binned by compile (--sensor-size)
    timesteps: int = 4
    samples: int = 4
    expect: dict[str, str] = field(default_factory=lambda: dict(ALL_MUST))
    model_refusal: str | None = None  # MUST: the compile refuses the whole model; ANY: it may
    exact_lava: bool = False  # an IF network: Lava's fixed point must be bit-exact, not only within the bound
    slow: bool = False
    set_multistep: bool = True  # the zoo builds it single-step; the factory switches it to 'm'
    calibrate: bool = True  # scale layers so that every neuron layer fires (needs a working forward pass)
    pending: dict[str, str] = field(default_factory=dict)  # "compile" or a target -> keys of PENDING, "a,b"

    def pending_reason(self, scope: str) -> str | None:
        """Why `scope` ("compile", a target, or "tools") is expected to fail today, if it is."""
        scopes = ["compile"] + ([] if scope == "compile" else [scope])
        keys = [k for s in scopes for k in self.pending.get(s, "").split(",") if k]
        return "; ".join(PENDING[k] for k in dict.fromkeys(keys)) or None

    @property
    def sensor_size(self) -> tuple[int, int, int]:
        """tonic's (W, H, P) for this case's input (P, H, W)."""
        return self.shape[2], self.shape[1], self.shape[0]


def _parametric(net: str, shape: tuple[int, int, int], events: bool, classes: int = 10,
                recordings: tuple[str, ...] = ()) -> list[Case]:
    """A parametric_lif_net network with ParametricLIFNode (as in the paper) and with IFNode; for the event
    networks also from tonic-style recordings (with the neurons named in `recordings`)."""
    cases = []
    for node, exact in (("ParametricLIFNode", False), ("IFNode", True)):
        short = "plif" if node.startswith("Param") else "if"
        for tonic in (False, True) if short in recordings else (False,):
            cases.append(Case(
                f"{net}-{short}{'-tonic' if tonic else ''}",
                "from spikingjelly.activation_based.model import parametric_lif_net",
                f"parametric_lif_net.{net}(channels=8, spiking_neuron=neuron.{node})",
                shape, classes=classes, events=events and not tonic, recordings=tonic, exact_lava=exact))
    return cases


def _sew(cnf: str, shape: tuple[int, int, int], slow: bool) -> Case:
    suffix = "" if shape == (3, 32, 32) else f"-{shape[1]}px"
    # ADD sums spikes into the next layers' synapses; AND (x * y) and IAND (x * (1 - y)) of binary spikes
    # are binary, a threshold neuron on Lava and NIR: every target must carry all three.
    return Case(f"sew_resnet18-{cnf.lower()}{suffix}", "from spikingjelly.activation_based.model import sew_resnet",
                f"sew_resnet.sew_resnet18(cnf={cnf!r}, spiking_neuron=neuron.IFNode, num_classes=10)", shape,
                exact_lava=True, slow=slow)


def _resnet(node: str, shape: tuple[int, int, int], slow: bool) -> Case:
    suffix = "" if shape == (3, 32, 32) else f"-{shape[1]}px"
    return Case(f"spiking_resnet18-{node[:-4].lower()}{suffix}",
                "from spikingjelly.activation_based.model import spiking_resnet",
                f"spiking_resnet.spiking_resnet18(spiking_neuron=neuron.{node}, num_classes=10)", shape,
                exact_lava=node == "IFNode", slow=slow)


def _vgg(name: str) -> Case:
    return Case(name, "from spikingjelly.activation_based.model import spiking_vgg",
                f"spiking_vgg.{name}(spiking_neuron=neuron.IFNode, num_classes=10)", (3, 32, 32),
                samples=2, exact_lava=True, slow=True)


MS_RESNET = "from spikingjelly.activation_based.model import ms_resnet"

CASES: tuple[Case, ...] = (
    _resnet("IFNode", (3, 16, 16), slow=False),
    _resnet("LIFNode", (3, 16, 16), slow=False),
    _resnet("IFNode", (3, 32, 32), slow=True),
    _resnet("LIFNode", (3, 32, 32), slow=True),
    _sew("ADD", (3, 16, 16), slow=False),
    _sew("AND", (3, 16, 16), slow=False),
    _sew("IAND", (3, 16, 16), slow=False),
    _sew("ADD", (3, 32, 32), slow=True),
    _sew("AND", (3, 32, 32), slow=True),
    _sew("IAND", (3, 32, 32), slow=True),
    _vgg("spiking_vgg11"),
    _vgg("spiking_vgg11_bn"),
    # The membrane shortcut carries analog values between blocks (and through the downsample conv):
    # Lava passes only binary spikes between layers. NIR sums fan-in edges, which carries it.
    Case("ms_resnet18-16px", MS_RESNET, "ms_resnet.ms_resnet18(T=4, num_classes=10)", (3, 16, 16),
         expect={"onnx-cpu": MUST, "loihi2-sim": REFUSE, "nir": MUST}, set_multistep=False),
    Case("ms_resnet18", MS_RESNET, "ms_resnet.ms_resnet18(T=4, num_classes=10)", (3, 32, 32),
         expect={"onnx-cpu": MUST, "loihi2-sim": REFUSE, "nir": MUST}, set_multistep=False, slow=True),
    # Max pooling of analog BN outputs: Lava and NIR pool only spikes (as an OR).
    Case("max_resnet18-8px", MS_RESNET, "ms_resnet.max_resnet18(T=4, num_classes=10)", (3, 8, 8),
         expect={"onnx-cpu": MUST, "loihi2-sim": REFUSE, "nir": REFUSE}, set_multistep=False),
    Case("max_resnet18", MS_RESNET, "ms_resnet.max_resnet18(T=4, num_classes=10)", (3, 32, 32),
         expect={"onnx-cpu": MUST, "loihi2-sim": REFUSE, "nir": REFUSE}, set_multistep=False, slow=True),
    *_parametric("MNISTNet", (1, 28, 28), events=False),
    *_parametric("FashionMNISTNet", (1, 28, 28), events=False),
    *_parametric("NMNISTNet", (2, 34, 34), events=True, recordings=("if",)),
    *_parametric("CIFAR10Net", (3, 32, 32), events=False),
    *_parametric("CIFAR10DVSNet", (2, 128, 128), events=True),
    *_parametric("DVSGestureNet", (2, 128, 128), events=True, classes=11, recordings=("plif",)),
    # OTTTLIFNode is a soft-reset LIF (Lava and NIR have hard reset only), Scale a constant product
    # (folded), WSConv2d standardizes its weights. OTTT is single-step by design (and in spikingjelly
    # 2.0.0 OTTTLIFNode's multi-step forward fails by itself), so the factory leaves it single-step.
    Case("ottt_spiking_vggws", "from spikingjelly.activation_based.model import spiking_vggws_ottt",
         "spiking_vggws_ottt.ottt_spiking_vggws(num_classes=10)", (3, 32, 32),
         expect={"onnx-cpu": MUST, "loihi2-sim": REFUSE, "nir": REFUSE}, set_multistep=False),
    # Cross-time attention (non-causal over T) and transformer attention: out of scope, one clean error.
    Case("masnn_dvs128_gesture", "from spikingjelly.activation_based.model import masnn",
         "masnn.masnn_dvs128_gesture(T=5)", (2, 32, 32), events=True, timesteps=5, classes=11,
         model_refusal=MUST, set_multistep=False, calibrate=False),
    Case("spikformer_cifar10", "from spikingjelly.activation_based.model import spikformer",
         "spikformer.spikformer_cifar10(T=4, num_classes=10)", (3, 32, 32), model_refusal=MUST,
         set_multistep=False, calibrate=False),
)


def case_named(name: str) -> Case:
    return next(c for c in CASES if c.name == name)


# --- what the user brings ---------------------------------------------------------------------------


@dataclass(frozen=True)
class UserFiles:
    weights: Path
    factory: Path
    data: Path
    masked: dict[str, int]  # conv name -> channels zeroed
    rates: dict[str, float]  # neuron layer -> spike rate of the user's model on the inputs (when calibrated)


def factory_source(case: Case) -> str:
    """The user's model file: `build()` returns the multi-step network."""
    step = '    functional.set_step_mode(model, "m")\n' if case.set_multistep else ""
    return (f'"""{case.name} from the spikingjelly model zoo."""\n\n'
            "from spikingjelly.activation_based import functional, neuron  # noqa: F401\n"
            f"{case.imports}\n\n\n"
            "def build():\n"
            f"    model = {case.constructor}\n{step}"
            "    return model\n")


def load_factory(path: Path) -> nn.Module:
    """Import the factory file under a unique name and build the network."""
    name = f"zoo_case_{path.parent.name}_{path.stem}".replace("-", "_").replace(".", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.build()


def randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    """Eval statistics and affine parameters that make untrained neurons fire at varied rates."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                c = module.num_features
                module.running_mean.copy_(torch.rand(c, generator=generator) * 0.4 - 0.2)
                module.running_var.copy_(torch.rand(c, generator=generator) * 1.5 + 0.5)
                if module.affine:
                    module.weight.copy_(torch.rand(c, generator=generator) * 1.5 + 0.5)
                    module.bias.copy_(torch.rand(c, generator=generator) * 0.4 - 0.1)


def conv_bn_pairs(model: nn.Module) -> list[tuple[str, nn.Conv2d, nn.Module | None]]:
    """Every conv with the batch norm registered right after it (its reader in all zoo families), or None."""
    named = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    pairs = []
    for index, (name, module) in enumerate(named):
        if not isinstance(module, nn.Conv2d):
            continue
        after = named[index + 1][1] if index + 1 < len(named) else None
        bn = after if isinstance(after, nn.BatchNorm2d) and after.num_features == module.out_channels else None
        pairs.append((name, module, bn))
    return pairs


def prune_sca(model: nn.Module, generator: torch.Generator, fraction: float = PRUNED_FRACTION) -> dict[str, int]:
    """Zero about `fraction` of each conv's output channels: filter, bias and the following BN's gamma and beta."""
    masked = {}
    with torch.no_grad():
        for name, conv, bn in conv_bn_pairs(model):
            drop = torch.rand(conv.out_channels, generator=generator) < fraction
            drop[0] = False  # keep at least one channel
            conv.weight[drop] = 0
            if conv.bias is not None:
                conv.bias[drop] = 0
            if bn is not None and bn.affine:
                bn.weight[drop] = 0
                bn.bias[drop] = 0
            masked[name] = int(drop.sum())
    return masked


def make_recording(case: Case, rng: np.random.Generator) -> np.ndarray:
    """One tonic-style recording: events spread over the sensor and the recording window, sorted by time."""
    events = np.zeros(EVENTS_PER_RECORDING, dtype=TONIC_DTYPE)
    width, height, polarities = case.sensor_size
    events["x"] = rng.integers(0, width, events.size)
    events["y"] = rng.integers(0, height, events.size)
    events["p"] = rng.integers(0, polarities, events.size).astype(bool)
    events["t"] = rng.integers(0, RECORDING_US, events.size)
    return np.sort(events, order="t", kind="stable")


def make_inputs(case: Case, generator: torch.Generator) -> dict[str, np.ndarray]:
    """Frames [N, C, H, W] (uniform, shown at every step), binary events [T, N, C, H, W], or tonic-style
    recordings (arr_0, arr_1, ...), with labels `y`."""
    if case.recordings:
        rng = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=generator)))
        y = rng.integers(0, case.classes, case.samples)
        return {f"arr_{i}": make_recording(case, rng) for i in range(case.samples)} | {"y": y}
    if case.events:
        x = (torch.rand(case.timesteps, case.samples, *case.shape, generator=generator) < 0.2).float()
    else:
        x = torch.rand(case.samples, *case.shape, generator=generator) * 2
    y = torch.randint(0, case.classes, (case.samples,), generator=generator)
    return {"x": x.numpy(), "y": y.numpy()}


def bin_recordings(case: Case, arrays: dict[str, np.ndarray]) -> torch.Tensor:
    """Event counts [T, N, P, H, W] of the recordings in `timesteps` equal time bins (as tonic's ToFrame)."""
    recordings = [arrays[f"arr_{i}"] for i in range(case.samples)]
    frames = np.zeros((case.timesteps, case.samples, *case.shape), dtype=np.float32)
    for sample, events in enumerate(recordings):
        t = events["t"] - events["t"].min()
        steps = np.minimum(t * case.timesteps // (int(t.max()) + 1), case.timesteps - 1)
        np.add.at(frames, (steps, sample, events["p"].astype(int), events["y"], events["x"]), 1)
    return torch.from_numpy(frames)


def sequence_of(case: Case, arrays: dict[str, np.ndarray]) -> torch.Tensor:
    """The [T, N, C, H, W] sequence the network sees for these inputs (frames repeated at every step)."""
    if case.recordings:
        return bin_recordings(case, arrays)
    x = torch.from_numpy(arrays["x"])
    return x if case.events else x.unsqueeze(0).repeat(case.timesteps, 1, 1, 1, 1)


def single_step(model: nn.Module) -> bool:
    """Whether the network's neurons take one step per call (OTTT's networks are built so)."""
    return any(getattr(m, "step_mode", "m") == "s" for m in model.modules() if isinstance(m, neuron.BaseNode))


def run_sequence(model: nn.Module, x: torch.Tensor) -> None:
    """Run the network from rest on the [T, N, ...] sequence `x`, in one call or step by step."""
    functional.reset_net(model)
    if single_step(model):
        for step in x:
            model(step)
    else:
        model(x)


def _call_order(model: nn.Module, x: torch.Tensor) -> list[nn.Module]:
    """Leaf modules in the order the forward pass first calls them."""
    order: dict[int, nn.Module] = {}

    def record(module: nn.Module, args: tuple) -> None:
        order.setdefault(id(module), module)

    leaves = [m for m in model.modules() if isinstance(m, neuron.BaseNode) or not list(m.children())]
    handles = [m.register_forward_pre_hook(record) for m in leaves]
    try:
        run_sequence(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return list(order.values())


class _Captured(Exception):
    """Stops a forward pass once the input of interest is seen."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value


def _neuron_input(model: nn.Module, node: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """What `node` receives on `x` (all steps, or the first when single-step); the forward stops there."""

    def capture(module: nn.Module, args: tuple) -> None:
        raise _Captured(args[0].detach().flatten())

    handle = node.register_forward_pre_hook(capture)
    try:
        run_sequence(model, x)
    except _Captured as captured:
        return captured.value
    finally:
        handle.remove()
    raise AssertionError(f"the forward pass never reached {type(node).__name__}")


def _scale_output(module: nn.Module, factor: float) -> None:
    """Multiply what an affine layer (BN, conv, linear) emits; zeroed channels stay zero. A weight-standardized
    layer (OTTT's WSConv2d) normalizes its weight away, so its gain is scaled instead."""
    for name in ("gain" if isinstance(getattr(module, "gain", None), torch.Tensor) else "weight", "bias"):
        value = getattr(module, name, None)
        if isinstance(value, torch.Tensor):
            value.mul_(factor)


def calibrate_activity(model: nn.Module, x: torch.Tensor, target: float = ACTIVITY_TARGET) -> None:
    """Scale the layer driving each neuron (in forward order) so that its input's 90th percentile sits at
    `target` times the threshold: random weights otherwise leave deep layers silent, which makes every
    parity check downstream of them trivially exact."""
    with torch.no_grad():
        order = _call_order(model, x)
        for index, node in enumerate(order):
            drivers = [m for m in order[:index] if isinstance(m, AFFINE)]
            if not isinstance(node, neuron.BaseNode) or not drivers:
                continue
            current = _neuron_input(model, node, x)
            if current.numel() > QUANTILE_MAX:
                current = current[:: current.numel() // QUANTILE_MAX + 1]
            level = float(torch.quantile(current.double(), 0.9))
            if level > 0:
                threshold = float(getattr(node, "v_threshold", 1.0))
                _scale_output(drivers[-1], min(max(target * threshold / level, 1 / 16), 64.0))


def spike_rates(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """Per neuron layer, the fraction of its neuron-steps that spike on `x` (the user's model, in torch)."""
    spikes: dict[str, list[float]] = {}
    nodes = {m: n for n, m in model.named_modules() if isinstance(m, neuron.BaseNode)}

    def record(module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        spikes.setdefault(nodes[module], []).append(float(output.float().mean()))

    handles = [m.register_forward_hook(record) for m in nodes]
    try:
        with torch.no_grad():
            run_sequence(model, x)
    finally:
        for handle in handles:
            handle.remove()
    return {name: sum(means) / len(means) for name, means in spikes.items()}


def write_user_files(case: Case, root: Path, seed: int = 0) -> UserFiles:
    """Build the seeded, pruned, activity-calibrated network; write weights, factory file and inputs."""
    root.mkdir(parents=True, exist_ok=True)
    factory = root / f"{case.name.replace('-', '_')}.py"
    factory.write_text(factory_source(case))
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    model = load_factory(factory).eval()
    randomize_batchnorm(model, generator)
    masked = prune_sca(model, generator)
    inputs = make_inputs(case, generator)
    rates = {}
    if case.calibrate:
        calibrate_activity(model, sequence_of(case, inputs))
        rates = spike_rates(model, sequence_of(case, inputs))
    functional.reset_net(model)
    torch.save(model.state_dict(), root / "weights.pt")
    np.savez(root / "inputs.npz", **inputs)
    del model
    return UserFiles(root / "weights.pt", factory, root / "inputs.npz", masked, rates)


# --- running the CLI ----------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One CLI call: exit code, both streams, any exception that escaped, and how long it took."""

    args: list[str]
    exit_code: int
    stdout: str
    stderr: str
    seconds: float
    error: str | None = None  # the traceback of an exception that escaped the CLI

    @property
    def text(self) -> str:
        return "\n".join(part for part in (self.stdout, self.stderr, self.error) if part)

    def has_traceback(self) -> bool:
        return self.error is not None or "Traceback (most recent call last)" in self.text

    def last_line(self) -> str:
        """The `error:` line of a refusal, else the last line of output (a traceback's exception)."""
        errors = [line for line in self.stderr.splitlines() if line.startswith("error:")]
        lines = errors or [line for line in self.text.strip().splitlines() if line.strip()]
        return lines[-1].strip() if lines else f"exit code {self.exit_code}, no output"


def cli(*args: str) -> Outcome:
    """Run `scadeploy ARGS` in-process, catching what escapes so the caller can report it."""
    from click.testing import CliRunner

    from scadeploy.cli import main

    start = time.perf_counter()
    result = CliRunner().invoke(main, list(args), catch_exceptions=True)
    error = None
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        error = "".join(traceback.format_exception(result.exception))
    return Outcome(list(args), result.exit_code, result.stdout, result.stderr, time.perf_counter() - start, error)


def compile_args(case: Case, files: UserFiles, out: Path) -> list[str]:
    targets = [arg for target in TARGETS for arg in ("-t", target)]
    sensor = ["--sensor-size", ",".join(map(str, case.sensor_size))] if case.recordings else []
    return ["compile", str(files.weights), "--model", f"{files.factory}:build", "--masks", "auto",
            "--data", str(files.data), *sensor, "-T", str(case.timesteps), "-o", str(out), *targets, "--force",
            "--json"]


@dataclass
class CaseRun:
    """A case compiled (or refused) plus the follow-up commands on its directory."""

    case: Case
    files: UserFiles
    out: Path
    compile: Outcome
    manifest: dict | None
    tools: dict[str, Outcome] = field(default_factory=dict)
    seconds: float = 0.0


def compile_case(case: Case, root: Path) -> CaseRun:
    """Write the user's files and compile them to every target."""
    start = time.perf_counter()
    files = write_user_files(case, root / "user")
    out = root / "compiled"
    outcome = cli(*compile_args(case, files, out))
    manifest = None
    if outcome.exit_code == 0 and outcome.error is None:
        try:
            manifest = json.loads(outcome.stdout)
        except json.JSONDecodeError:
            manifest = None
    return CaseRun(case, files, out, outcome, manifest, seconds=time.perf_counter() - start)


def run_tools(run: CaseRun) -> dict[str, Outcome]:
    """inspect, a short benchmark, and (when Lava compiled) the emulator on a few samples."""
    compiled = {t for t, v in target_verdicts(run.manifest).items() if v.compiled} if run.manifest else set()
    runners = BENCHMARK_RUNNERS if "onnx-cpu" in compiled else ("spikingjelly:stripped",)
    tools = {"inspect": cli("inspect", str(run.out)),
             "benchmark": cli("benchmark", str(run.out), "-b", "1", "--warmup", "0", "--repeats", "1",
                              "--threads", "1", *[a for r in runners for a in ("-r", r)],
                              "--plot", str(run.out.parent / "benchmark.png"), "--json")}
    if "loihi2-sim" in compiled:
        tools["simulate"] = cli("simulate", str(run.out), "--backend", "emulator", "--samples",
                                str(SIMULATE_SAMPLES), "--json")
    run.tools = tools
    return tools


def run_case(case: Case, root: Path) -> CaseRun:
    """Compile, then run the tools when the compile succeeded."""
    run = compile_case(case, root)
    if run.manifest is not None:
        start = time.perf_counter()
        run_tools(run)
        run.seconds += time.perf_counter() - start
    return run


# --- judging --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    """What happened to one target: compiled (with its parity), refused (with the reason), or failed."""

    status: str  # "exact", "approximate", "refused", "failed", "missing"
    detail: str

    @property
    def compiled(self) -> bool:
        return self.status in ("exact", "approximate")

    def cell(self) -> str:
        return f"{self.status} ({self.detail})" if self.compiled else f"{self.status}: {self.detail}"


def refusal_reason(manifest: dict, target: str) -> str | None:
    """The one-line reason the manifest records for a refused target (`refused: {target: {reason, hint}}`)."""
    entry = manifest.get("refused", {}).get(target)
    return None if entry is None else str(entry.get("reason", ""))


def _onnx_verdict(parity: dict) -> Verdict:
    diff = parity.get("max_logit_diff", float("nan"))
    detail = f"max logit diff {diff:.2g}, {parity.get('spike_mismatches', '?')} spikes differ"
    ok = parity.get("passed") is True and diff <= LOGIT_TOLERANCE
    return Verdict("exact" if ok else "failed", detail if ok else f"ONNX parity failed: {detail}")


def _lava_verdict(parity: dict, must_be_exact: bool) -> Verdict:
    measured = parity.get("emulator_vs_quantized_ir", {})
    agreement = parity.get("emulator_vs_float", {}).get("class_agreement")
    detail = (f"{measured.get('spike_mismatches', '?')} of {measured.get('spikes_compared', '?')} spikes vs the "
              f"integer graph, class agreement with float {agreement if agreement is None else f'{agreement:.0%}'}")
    if parity.get("exact") is True:
        return Verdict("exact", detail)
    approximate = parity.get("approximate_layers") or []
    if approximate and not must_be_exact:
        return Verdict("approximate", f"LIF leak in {len(approximate)} layers; {detail}")
    return Verdict("failed", f"fixed point not exact: {detail}")


def _nir_verdict(parity: dict) -> Verdict:
    if "skipped" in parity:
        return Verdict("failed", f"NIR parity not checked ({parity['skipped']})")
    mismatches = parity.get("spike_mismatches")
    diff = parity.get("max_logit_diff", float("nan"))
    detail = (f"{mismatches} of {parity.get('spikes_compared', '?')} spikes via spikingjelly's importer, "
              f"max logit diff {diff:.2g}")
    ok = mismatches == 0 and diff <= LOGIT_TOLERANCE
    return Verdict("exact" if ok else "failed", detail)


def target_verdict(manifest: dict, target: str, must_be_exact: bool) -> Verdict:
    """The verdict on one target of a successful compile."""
    section = manifest.get("targets", {}).get(target)
    reason = refusal_reason(manifest, target)
    if reason is not None and section is not None:
        return Verdict("failed", "recorded both as compiled and as refused")
    if reason is not None:
        return Verdict("refused", reason)
    if not isinstance(section, dict):
        return Verdict("missing", "neither compiled nor recorded as refused in the manifest")
    parity = section.get("parity", {})
    backend = section.get("backend")
    if backend == "onnx":
        return _onnx_verdict(parity)
    if backend == "lava":
        return _lava_verdict(parity, must_be_exact)
    if backend == "nir":
        return _nir_verdict(parity)
    return Verdict("failed", f"unknown backend {backend!r}")


def target_verdicts(manifest: dict, must_be_exact: bool = False) -> dict[str, Verdict]:
    return {target: target_verdict(manifest, target, must_be_exact) for target in TARGETS}


NAMED = re.compile(r"'[\w.\-\[\]]+'")  # a node or module named in quotes: 'layer2.0.max_pool'


def clean_refusal(reason: str, named: bool = True) -> str | None:
    """A problem with a refusal reason, or None when it is one line (naming a node or module, if `named`)."""
    if not reason.strip():
        return "the refusal gives no reason"
    if "\n" in reason.strip():
        return f"the refusal is not one line: {reason!r}"
    if "Traceback" in reason:
        return f"the refusal holds a traceback: {reason!r}"
    if named and not NAMED.search(reason):
        return f"the refusal names no node or module: {reason!r}"
    return None


def compile_problems(run: CaseRun) -> list[str]:
    """What is wrong with the compile itself (exit code, traceback, trace and stripping parity)."""
    outcome, case = run.compile, run.case
    if outcome.has_traceback():
        return [f"traceback in the compile output ({outcome.last_line()}):\n{outcome.text[-4000:]}"]
    if outcome.exit_code != 0:
        if case.model_refusal is None:
            return [f"compile exited {outcome.exit_code}: {outcome.last_line()}\n{outcome.text[-2000:]}"]
        return _model_refusal_problems(outcome)
    if case.model_refusal == MUST:
        return ["the compile succeeded but the model must be refused"]
    if run.manifest is None:
        return [f"compile printed no manifest JSON: {outcome.stdout[:500]!r}"]
    parity = run.manifest.get("parity", {})
    problems = []
    if not parity.get("trace_vs_model", {}).get("passed"):
        problems.append(f"traced graph disagrees with the model: {parity.get('trace_vs_model')}")
    if not parity.get("stripped_vs_masked", {}).get("exact"):
        problems.append(f"stripped vs masked is not exact: {parity.get('stripped_vs_masked')}")
    inferred = {row["layer"]: row.get("masked") for row in run.manifest.get("layers", [])}
    wrong = {name: (zeroed, inferred.get(name)) for name, zeroed in run.files.masked.items()
             if inferred.get(name) != zeroed}
    if wrong:
        problems.append(f"masks inferred from the zeroed weights differ (layer: zeroed, inferred): {wrong}")
    return problems


def _model_refusal_problems(outcome: Outcome) -> list[str]:
    if outcome.exit_code != 2:
        return [f"the refusal exited {outcome.exit_code}, not 2: {outcome.text[-1000:]}"]
    errors = [line for line in outcome.stderr.splitlines() if line.startswith("error:")]
    others = [line for line in outcome.stderr.splitlines() if line.strip() and not line.startswith(("error:", "hint:"))]
    if len(errors) != 1 or others:
        return [f"the refusal is not one error line (and a hint): {outcome.stderr!r}"]
    problem = clean_refusal(errors[0], named=False)  # a model that crashes by itself may have no node to name
    return [problem] if problem else []


def model_refused(run: CaseRun) -> bool:
    return run.compile.exit_code == 2 and not run.compile.has_traceback()


def target_problems(run: CaseRun, target: str) -> list[str]:
    """What is wrong with one target's outcome against the case's expectation."""
    if run.manifest is None:
        if run.case.model_refusal is not None and model_refused(run):
            return []  # the whole model was refused, which this case allows
        return [f"no manifest: compile exited {run.compile.exit_code}: {run.compile.last_line()}"]
    verdict = target_verdict(run.manifest, target, run.case.exact_lava)
    expected = run.case.expect[target]
    if verdict.status in ("failed", "missing"):
        return [f"{target} {verdict.status}: {verdict.detail}"]
    if verdict.compiled and expected == REFUSE:
        return [f"{target} compiled ({verdict.detail}) but must be refused"]
    if verdict.status == "refused":
        if expected == MUST:
            return [f"{target} refused but must compile: {verdict.detail}"]
        problem = clean_refusal(verdict.detail)
        return [f"{target}: {problem}"] if problem else []
    return []


def activity_problems(run: CaseRun) -> list[str]:
    """A case whose neuron layers stay silent checks little: every layer must spike on the inputs."""
    silent = silent_layers(run)
    return [f"neuron layers never spike on the inputs (their parity is vacuous): {silent}"] if silent else []


def tool_problems(run: CaseRun) -> list[str]:
    """inspect, benchmark and simulate each exit 0 without a traceback; the benchmarked runtime agrees."""
    problems = []
    for name, outcome in run.tools.items():
        if outcome.exit_code != 0 or outcome.has_traceback():
            problems.append(f"{name} exited {outcome.exit_code} ({outcome.last_line()}):\n{outcome.text[-2000:]}")
    bench = run.tools.get("benchmark")
    if bench is not None and bench.exit_code == 0:
        agreement = json.loads(bench.stdout).get("agreement", {})
        off = {runner: diff for runner, diff in agreement.items() if not diff <= LOGIT_TOLERANCE}
        if off:
            problems.append(f"benchmark runners disagree with the torch reference (max |logit diff|): {off}")
    return problems


def silent_layers(run: CaseRun) -> list[str]:
    """Neuron layers of the user's model that never spike on the inputs: parity through them proves little."""
    return [name for name, rate in run.files.rates.items() if rate == 0]


def status_cell(run: CaseRun, target: str, width: int = 160) -> str:
    """One cell of the status table: exact (numbers), refused: reason, or FAILED: line (cut to `width`)."""
    if run.manifest is None:
        if not model_refused(run):
            return _cut(f"FAILED: {run.compile.last_line()}", width)
        if target != TARGETS[0]:
            return "refused (whole model)"
        errors = [line for line in run.compile.stderr.splitlines() if line.startswith("error:")]
        return _cut("refused (whole model): " + (errors[0][len("error: "):] if errors else run.compile.last_line()),
                    width)
    problems = target_problems(run, target)
    verdict = target_verdict(run.manifest, target, run.case.exact_lava)
    return _cut(f"FAILED: {problems[0].splitlines()[0]}" if problems else verdict.cell(), width)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def expectation_problems(run: CaseRun) -> list[tuple[str, str]]:
    """Every unmet expectation of a case as (scope, first line): the compile, each target, then the tools."""
    problems = [("compile", p) for p in activity_problems(run) + compile_problems(run)]
    if run.case.model_refusal != MUST:
        problems += [(target, p) for target in TARGETS for p in target_problems(run, target)]
    problems += [("tools", p) for p in tool_problems(run)]
    lines = {p.splitlines()[0]: scope for scope, p in reversed(problems)}
    return [(scope, line) for line, scope in reversed(lines.items())]


def describe(case: Case) -> str:
    """`name (C,H,W, T=.., frames|events)` for the table."""
    layout = "tonic recordings" if case.recordings else "events" if case.events else "frames"
    return f"{case.name} ({','.join(map(str, case.shape))}, T={case.timesteps}, {layout})"


if __name__ == "__main__":  # print one case's factory file: python tests/zoo/families.py NAME
    print(factory_source(case_named(sys.argv[1])))
