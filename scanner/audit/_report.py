"""The readable report: Markdown tables, and PNG charts when matplotlib is installed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["REPORT", "write_report"]

REPORT = "report.md"
_TABLE_ROWS = 50  # groups listed per column in the report (all of them are in summary.json)
_CHART_BARS = 25


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def _interval(ci: list[float] | None) -> str:
    return "n/a" if ci is None else f"{_pct(ci[0])} – {_pct(ci[1])}"


def _table(entries: list[dict[str, Any]], column: str) -> list[str]:
    lines = [
        f"| {column} | outputs | refusals | refusal rate | 95% CI |",
        "|---|---:|---:|---:|---|",
    ]
    for entry in entries:
        value = "(none)" if entry["value"] is None else str(entry["value"]).replace("|", "\\|")
        lines.append(
            f"| {value} | {entry['outputs']:,} | {entry['refusals']:,} | "
            f"{_pct(entry['rate'])} | {_interval(entry['ci95'])} |"
        )
    return lines


def _chart(column: str, entries: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # files only: no display, no GUI toolkit
    import matplotlib.pyplot as plt

    labels = ["(none)" if e["value"] is None else str(e["value"])[:40] for e in entries]
    rates = [100 * (e["rate"] or 0.0) for e in entries]
    bounds = [
        (100 * e["ci95"][0], 100 * e["ci95"][1]) if e["ci95"] else (0.0, 0.0) for e in entries
    ]
    low = [max(0.0, r - lo) for r, (lo, _) in zip(rates, bounds, strict=True)]
    high = [max(0.0, hi - r) for r, (_, hi) in zip(rates, bounds, strict=True)]
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.35 * len(entries)))
    try:
        if column == "day":
            ax.errorbar(labels, rates, yerr=[low, high], marker="o", capsize=3)
            ax.set_ylabel("refusal rate (%)")
            ax.tick_params(axis="x", labelrotation=60)
            fig.set_size_inches(max(6.0, 0.35 * len(entries)), 4)
        else:
            ax.barh(labels, rates, xerr=[low, high], capsize=3, color="#4c72b0")
            ax.invert_yaxis()
            ax.set_xlabel("refusal rate (%), with 95% Wilson interval")
        ax.set_title(f"Refusal rate by {column}")
        fig.tight_layout()
        fig.savefig(path, dpi=100)
    finally:
        plt.close(fig)


def write_report(out: Path, summary: dict[str, Any], about: dict[str, Any]) -> list[str]:
    """Write ``report.md`` (and ``charts/*.png``) in ``out``; return what was left out, and why."""
    skipped: list[str] = []
    charts = False
    if summary["by"]:  # charts only break rates down: nothing to draw without --group-by
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            skipped.append(
                "charts: matplotlib is not installed (`pip install matplotlib` to draw them)"
            )
        else:
            charts = True
    lines = [
        "# Refusal audit",
        "",
        f"Scanner: `{about['scanner']['model']}` (threshold {about['scanner']['threshold']}), "
        f"{about['shape']} rows from {about['files']} file(s), engine `{about['engine']}`.",
        "",
        "## Overall",
        "",
        f"- outputs scored: {summary['outputs']:,}",
        f"- refusals: {summary['refusals']:,}",
        f"- refusal rate: {_pct(summary['rate'])} (95% CI {_interval(summary['ci95'])})",
        f"- rows that could not be read: {summary['errors']:,} (see `errors.jsonl`)",
        "- decided by: "
        + (", ".join(f"{k} {v:,}" for k, v in summary["signals"].items()) or "nothing"),
        "",
    ]
    for column, entries in summary["by"].items():
        shown = sorted(entries, key=lambda e: -e["outputs"])[:_TABLE_ROWS]
        if column == "day":
            shown.sort(key=lambda e: (e["value"] is None, e["value"] or ""))
        lines += [f"## By {column}", ""]
        if len(entries) > len(shown):
            lines += [
                f"The {len(shown)} largest of {len(entries)} groups; all are in `summary.json`.",
                "",
            ]
        if charts and entries:
            (out / "charts").mkdir(exist_ok=True)
            name = f"charts/by-{''.join(c if c.isalnum() else '-' for c in column)}.png"
            drawn = shown[:_CHART_BARS] if column != "day" else [e for e in shown if e["value"]]
            _chart(column, drawn, out / name)
            lines += [f"![Refusal rate by {column}]({name})", ""]
        lines += [*_table(shown, column), ""]
    if skipped:
        lines += ["## Skipped", "", *(f"- {s}" for s in skipped), ""]
    (out / REPORT).write_text("\n".join(lines), encoding="utf-8")
    return skipped
