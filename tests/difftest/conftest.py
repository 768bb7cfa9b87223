"""The outcome table of a difftest run: per backend, how many networks agreed, were refused or failed."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

_COUNTS: Counter = Counter()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call":
        for name, value in report.user_properties:
            if name == "difftest":
                for backend, outcome in json.loads(value).items():
                    _COUNTS[(backend, outcome)] += 1


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    if not _COUNTS:
        return
    from difftest.oracle import BACKENDS

    outcomes = ("agree", "refused", "failure", "not run")
    table = {b: {o: _COUNTS[(b, o)] for o in outcomes} for b in BACKENDS}
    cache = getattr(config, "cache", None)  # absent under -p no:cacheprovider
    path = Path(cache.mkdir("scadeploy")) / "difftest-summary.json" if cache else None
    if path is not None:
        path.write_text(json.dumps(table, indent=2) + "\n")
    terminalreporter.write_sep("-", "difftest outcomes per backend")
    terminalreporter.write_line(f"{'backend':14}" + "".join(f"{o:>10}" for o in outcomes))
    for backend, counts in table.items():
        terminalreporter.write_line(f"{backend:14}" + "".join(f"{counts[o]:>10}" for o in outcomes))
    if path is not None:
        terminalreporter.write_line(f"({path})")
