"""The differential oracle: compile one random network to every target and judge each executor.

Per backend the outcome is `agree`, `refused` (one clean ScadeployError line naming what it cannot
express) or `failure` (a raw exception, a broken invariant, or a disagreement beyond what the
backend claims). What each backend claims, and how it is checked:
- strip: stripped vs masked exact in float64, float32 flips only downstream of threshold ties
  (compile raises a GraphError otherwise, which is a failure);
- trace: the traced graph agrees with the module (a disagreement is a failure, since every layer the
  generator uses is one the tracer converts);
- onnx-cpu, openvino-cpu, nir (spikingjelly's importer): `parity.passed` of the target's `Agreement` with
  the torch reference (every differing spike traced to a threshold tie, and logits within tolerance when
  none differs);
- loihi2-sim: the emulator (Lava's integer arithmetic) reproduces the integer graph, 0 spikes differ,
  wherever the backend claims exactness (IF layers; LIF decay is reported as approximate);
- lava (sampled): Lava's own simulator reproduces the emulator, 0 spikes differ.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from difftest.generator import Case, build

from scadeploy.errors import ScadeployError

TARGETS = ("onnx-cpu", "openvino-cpu", "nir", "loihi2-sim")
BACKENDS = ("trace", "strip", *TARGETS, "lava")
CASE_SECONDS = 120


@dataclass
class Verdict:
    """Outcome per backend, with a one-line detail for refusals and failures."""

    outcomes: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)

    def set(self, backend: str, outcome: str, detail: str = "") -> None:
        self.outcomes[backend] = outcome
        if detail:
            self.details[backend] = detail[:400]

    @property
    def failed(self) -> bool:
        return "failure" in self.outcomes.values()

    def failures(self) -> dict[str, str]:
        return {b: self.details.get(b, "") for b, o in self.outcomes.items() if o == "failure"}


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in the code under test hides it."""


def _raise_timeout(signum, frame) -> None:
    raise CaseTimeout


def _clean(exc: BaseException) -> bool:
    """A refusal the CLI would print as one `error:` line with exit 2."""
    return isinstance(exc, ScadeployError) and exc.exit_code == 2 and "\n" not in exc.message


def _raw(exc: BaseException) -> str:
    return "".join(traceback.format_exception(exc)[-3:]).strip().replace("\n", " | ")


def judge(case: Case, lava_sim: bool = False) -> Verdict:
    """Compile `case` everywhere and judge every executor (see the module docstring)."""
    previous = signal.signal(signal.SIGALRM, _raise_timeout)
    signal.alarm(CASE_SECONDS)
    verdict = Verdict()
    out = Path(tempfile.mkdtemp(prefix="difftest-"))
    try:
        _judge(case, verdict, out / "compiled", lava_sim)
    except CaseTimeout:
        verdict.set("strip" if "strip" not in verdict.outcomes else "lava", "failure",
                    f"timeout after {CASE_SECONDS} s")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        shutil.rmtree(out, ignore_errors=True)
    return verdict


def _judge(case: Case, verdict: Verdict, out: Path, lava_sim: bool) -> None:
    from scadeploy.compiler import compile_model, write_artifacts
    from scadeploy.ir.graph import Encoding

    model, masks, x = build(case)
    try:
        result = compile_model(model, masks, x, case.timesteps, Encoding(case.encoding))
    except Exception as exc:  # noqa: BLE001 - every exception is judged, none may escape
        if _clean(exc) and "does not compute what the model computes" not in exc.message:
            for backend in BACKENDS:
                verdict.set(backend, "refused", exc.message)
        else:
            verdict.set("trace" if "traced graph" in str(exc) else "strip", "failure", _raw(exc))
        return
    verdict.set("trace", "agree" if result.fidelity.passed else "failure", str(result.fidelity))
    verdict.set("strip", "agree" if result.parity.exact else "failure", str(result.parity))
    try:
        manifest = write_artifacts(result, out, TARGETS)
    except Exception as exc:  # noqa: BLE001
        outcome = "refused" if _clean(exc) else "failure"
        for target in TARGETS:
            verdict.set(target, outcome, exc.message if _clean(exc) else _raw(exc))
        verdict.set("lava", outcome, "no target compiled")
        return
    for target in TARGETS:
        compiled = manifest.targets.get(target)
        if compiled is None:
            refused = manifest.refused.get(target)
            verdict.set(target, "refused" if refused else "failure", refused.reason if refused else "missing")
            continue
        ok, detail = _target_agrees(target, compiled.to_dict())
        verdict.set(target, "agree" if ok else "failure", detail)
    if lava_sim and verdict.outcomes.get("loihi2-sim") == "agree":
        _judge_lava(out, verdict)
    else:
        verdict.set("lava", "refused" if verdict.outcomes.get("loihi2-sim") == "refused" else "not run")


def _target_agrees(target: str, section: dict) -> tuple[bool, str]:
    parity = section.get("parity", {})
    if target in ("onnx-cpu", "openvino-cpu", "nir"):  # an `Agreement` (ir/agreement.py)
        return parity.get("passed") is True, str(parity)
    measured = parity.get("emulator_vs_quantized_ir", {})
    if parity.get("approximate_layers"):  # LIF decay on Loihi is approximate: agreement is reported, not claimed
        return parity.get("exact") is False, f"approximate layers {parity['approximate_layers']}: {measured}"
    return measured.get("spike_mismatches") == 0 and parity.get("exact") is True, str(measured)


def _judge_lava(out: Path, verdict: Verdict) -> None:
    """Lava's simulator on two samples against the emulator (the Lava backend's own comparison)."""
    from scadeploy.backends.lava.evaluate import simulate

    try:
        report = simulate(out, backend="lava", samples=2)
    except Exception as exc:  # noqa: BLE001
        verdict.set("lava", "refused" if _clean(exc) else "failure", exc.message if _clean(exc) else _raw(exc))
        return
    mismatches = report.emulator_spike_mismatches
    verdict.set("lava", "agree" if mismatches == 0 else "failure", f"{mismatches} spikes differ from the emulator")
