"""Presentation helpers shared by commands: rich tables and matplotlib figures saved as PNG.

They know nothing about scadeploy's data: callers pass column names, rows and series.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table


def format_number(value: object, digits: int = 3) -> str:
    """Readable cells: floats with `digits` significant digits, large integers with separators."""
    if isinstance(value, bool) or value is None:
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e6 or abs(value) < 10 ** -digits):
            return f"{value:.{digits - 1}e}"
        return f"{value:,.{digits}g}" if abs(value) < 10**digits else f"{value:,.0f}"
    return str(value)


def make_table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[object]],
               numeric: Sequence[str] = ()) -> Table:
    """A rich table; columns named in `numeric` are right-aligned and every cell is formatted."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, justify="right" if column in numeric else "left")
    for row in rows:
        table.add_row(*(format_number(cell) for cell in row))
    return table


def print_table(table: Table, console: Console | None = None) -> None:
    (console or Console()).print(table)


def _figure(title: str, xlabel: str, ylabel: str):
    import matplotlib

    matplotlib.use("Agg")  # files only; never opens a window
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    return plt, fig, ax


def save_line_plot(path: str | Path, series: Mapping[str, tuple[Sequence[float], Sequence[float]]], title: str,
                   xlabel: str, ylabel: str, logx: bool = False, logy: bool = False) -> Path:
    """One line with markers per series `{label: (xs, ys)}`, written as a PNG."""
    plt, fig, ax = _figure(title, xlabel, ylabel)
    for label, (xs, ys) in series.items():
        ax.plot(list(xs), list(ys), marker="o", label=label)
    if logx:
        ax.set_xscale("log", base=2)
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return save_figure(plt, fig, path)


def save_bar_plot(path: str | Path, categories: Sequence[str], series: Mapping[str, Sequence[float]], title: str,
                  ylabel: str, logy: bool = False) -> Path:
    """Grouped bars: one group per category, one bar per series `{label: values per category}`."""
    plt, fig, ax = _figure(title, "", ylabel)
    width = 0.8 / max(len(series), 1)
    for i, (label, values) in enumerate(series.items()):
        positions = [c + (i - (len(series) - 1) / 2) * width for c in range(len(categories))]
        ax.bar(positions, list(values), width, label=label)
    ax.set_xticks(range(len(categories)), list(categories), rotation=20, ha="right")
    if logy:
        ax.set_yscale("log")
    ax.legend(fontsize="small")
    return save_figure(plt, fig, path)


def save_figure(plt, fig, path: str | Path) -> Path:
    """Write a matplotlib figure (parent directories created) and close it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
