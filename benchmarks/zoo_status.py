"""Compile every spikingjelly zoo case to onnx-cpu, loihi2-sim and nir, and print where each stands.

    .venv/bin/python benchmarks/zoo_status.py            # every case, the full-size (slow) ones too
    .venv/bin/python benchmarks/zoo_status.py --quick    # the small inputs only (the default test run)
    .venv/bin/python benchmarks/zoo_status.py -k sew     # cases whose name contains 'sew'

Prints a markdown table `| zoo network | onnx-cpu | loihi2-sim | nir |`, each cell "exact (numbers)",
"approximate (numbers)" (Lava's LIF leak, within its bound), "refused: <reason>" or "FAILED: <line>",
and writes benchmarks/results/zoo_status.json. The cases, their expectations and how they are built
live in tests/zoo/families.py, shared with the acceptance tests in tests/zoo/.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from zoo import families as zoo  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "zoo_status.json"


def selected(quick: bool, names: list[str]) -> list[zoo.Case]:
    """The cases to run: all, or without the slow ones, optionally filtered by name substrings."""
    cases = [c for c in zoo.CASES if not (quick and c.slow)]
    return [c for c in cases if not names or any(n in c.name for n in names)]


def row(run: zoo.CaseRun) -> dict:
    """One case's cells, problems and timings, as stored in the JSON file."""
    return {
        "case": run.case.name,
        "network": zoo.describe(run.case),
        "slow": run.case.slow,
        "cells": {target: zoo.status_cell(run, target) for target in zoo.TARGETS},
        "expect": run.case.expect,
        "model_refusal": run.case.model_refusal,
        "problems": [{"scope": scope, "problem": line} for scope, line in zoo.expectation_problems(run)],
        "pending": {scope: run.case.pending_reason(scope) for scope in ("compile", *zoo.TARGETS)
                    if run.case.pending_reason(scope)},
        "tools": {name: o.exit_code for name, o in run.tools.items()},
        "spike_rates": {name: round(rate, 4) for name, rate in run.files.rates.items()},
        "silent_layers": zoo.silent_layers(run),
        "seconds": round(run.seconds, 1),
    }


def checked_row(case: zoo.Case, root: Path) -> dict:
    """The case's row; a crash while preparing its files is a FAILED row, not the end of the run."""
    try:
        return row(zoo.run_case(case, root))
    except Exception as exc:  # noqa: BLE001 - a broken case must not hide the others
        line = f"FAILED: preparing the case raised {type(exc).__name__}: {exc}"
        return {"case": case.name, "network": zoo.describe(case), "slow": case.slow,
                "cells": {target: line[:160] for target in zoo.TARGETS}, "expect": case.expect,
                "model_refusal": case.model_refusal, "problems": [{"scope": "compile", "problem": line}],
                "pending": {}, "tools": {}, "spike_rates": {}, "silent_layers": [], "seconds": 0.0}


def table(rows: list[dict]) -> str:
    """The markdown status table."""
    lines = ["| zoo network | " + " | ".join(zoo.TARGETS) + " |", "|---" * (len(zoo.TARGETS) + 1) + "|"]
    for r in rows:
        cells = [r["cells"][t].replace("|", "/") for t in zoo.TARGETS]
        lines.append(f"| {r['network']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def unmet(rows: list[dict]) -> str:
    """Each unmet expectation, labelled as known (its feature is not in yet) or as a new failure."""
    lines = []
    for r in rows:
        for problem in r["problems"]:
            known = r["pending"].get(problem["scope"]) or r["pending"].get("compile")
            label = f"known: {known}" if known else "NEW FAILURE"
            lines.append(f"- {r['case']} [{problem['scope']}] ({label}): {problem['problem'][:240]}")
    return "\n".join(lines) or "- none: every case meets its expectation"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="only the small inputs (skip the slow cases)")
    parser.add_argument("-k", dest="names", action="append", default=[], help="only cases whose name contains this")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--output", type=Path, default=RESULTS, help="where to write the JSON results")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="zoo_status_") as tmp:
        for case in selected(args.quick, args.names):
            print(f"running {case.name} ...", file=sys.stderr, flush=True)
            rows.append(checked_row(case, Path(tmp) / case.name))
            print(f"  {rows[-1]['seconds']} s", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    print(table(rows))
    print("\nExpectations not met:\n" + unmet(rows))
    print(f"\n{len(rows)} cases in {elapsed:.0f} s ({torch.get_num_threads()} threads, {platform.machine()})")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"quick": args.quick, "seconds": round(elapsed, 1), "threads": args.threads,
                                       "torch": torch.__version__, "cases": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
