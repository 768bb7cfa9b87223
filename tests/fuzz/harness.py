"""Run one fuzz case through the CLI in-process and classify what happened.

Outcomes: `ok` (exit 0), `clean` (exit 2 with one `error:` line, an optional `hint:`, no traceback),
or `failure` (an uncaught exception, another exit code, a timeout, or a failed compile that left
files behind). A compile that succeeds may leave out targets that refused the model, but must then
name each in the manifest (`check_targets`). A case gets CASE_SECONDS of wall time, enforced by SIGALRM.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner

CASE_SECONDS = 60
FULL = os.environ.get("SCADEPLOY_FUZZ") == "full"


def case_count(fast: int, full: int) -> int:
    """`full` cases under `make fuzz` (SCADEPLOY_FUZZ=full), else the fast subset."""
    return full if FULL else fast


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok", "clean" or "failure"
    detail: str
    seconds: float


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException so that no `except Exception` in the code under test hides it."""


def _on_alarm(signum, frame) -> None:
    raise CaseTimeout


def run_cli(argv: Sequence[str], compile_output: Path | None = None) -> Outcome:
    """Invoke `scadeploy argv`; `compile_output` is checked for partial output when the command fails."""
    from scadeploy.cli import main

    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(CASE_SECONDS)
    start = time.perf_counter()
    try:
        result = CliRunner().invoke(main, list(argv))
    except CaseTimeout:
        return Outcome("failure", f"timeout after {CASE_SECONDS} s", time.perf_counter() - start)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    seconds = time.perf_counter() - start
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        where = "".join(traceback.format_exception(*result.exc_info)[-3:]).strip()
        return Outcome("failure", f"uncaught {type(result.exception).__name__}: {where}", seconds)
    left = _left_behind(compile_output) if compile_output is not None and result.exit_code != 0 else []
    if left:
        return Outcome("failure", f"exit {result.exit_code} left {left}", seconds)
    if result.exit_code == 0:
        return Outcome("ok", "", seconds)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    tail_ok = len(errors) == 1 and all(line.startswith("hint: ") for line in lines[errors[0] + 1:])
    if result.exit_code == 2 and tail_ok and "Traceback" not in result.output and len(lines) - errors[0] <= 2:
        return Outcome("clean", lines[errors[0]][:200], seconds)
    return Outcome("failure", f"exit {result.exit_code}: {result.output[-600:]}", seconds)


def check_targets(outcome: Outcome, out_dir: Path, requested: int) -> Outcome:
    """A successful compile accounts for every requested target: compiled (with its files) or refused with a reason."""
    if outcome.kind != "ok":
        return outcome
    manifest = json.loads((out_dir / "manifest.json").read_text())
    targets, refused = manifest.get("targets", {}), manifest.get("refused", {})
    missing = [f for section in targets.values() for f in section.get("files", []) if not (out_dir / f).is_file()]
    if len(targets) + len(refused) != requested or not targets or missing or set(targets) & set(refused):
        return Outcome("failure", f"targets {sorted(targets)}, refused {sorted(refused)}, missing files {missing} "
                                  f"for {requested} requested", outcome.seconds)
    if any(not isinstance(r.get("reason"), str) or not r["reason"] or "\n" in r["reason"] for r in refused.values()):
        return Outcome("failure", f"a refusal without a one-line reason: {refused}", outcome.seconds)
    return outcome


def _left_behind(out_dir: Path) -> list[str]:
    """The output directory or a staging/trash directory beside it: what a failed compile must not leave."""
    left = [str(out_dir)] if out_dir.exists() else []
    if out_dir.parent.is_dir():
        left += [p.name for p in out_dir.parent.iterdir() if p.name.startswith(f".{out_dir.name}.")]
    return left


def copy_compiled(base: dict, dest: Path) -> Path:
    shutil.copytree(base["compiled"], dest)
    return dest


def case_rng(kind: str, case: int) -> random.Random:
    """The seed of a case is its kind and number: `pytest -k 'kind and case'` replays it."""
    return random.Random(f"{kind}-{case}")


def record(request: pytest.FixtureRequest, kind: str, what: str, outcome: Outcome) -> None:
    """Attach the outcome to the report (for the summary) and fail the test on a failure outcome."""
    request.node.user_properties.append(("fuzz", json.dumps({"kind": kind, "outcome": outcome.kind,
                                                              "seconds": round(outcome.seconds, 3)})))
    assert outcome.kind != "failure", f"{kind}: {what}: {outcome.detail}"
