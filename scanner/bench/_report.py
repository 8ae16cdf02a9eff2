"""Benchmark statistics, ratios to LLM Guard, targets, and the Markdown report.

Pure functions over the raw timings that both sides of ``norefusal bench`` produce (norefusal
in process, LLM Guard in its own virtualenv), so the statistics are computed one way for all.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "NOTES",
    "TARGETS",
    "Summary",
    "Target",
    "TargetResult",
    "check_targets",
    "percentile",
    "ratios",
    "render_markdown",
    "summarize",
]


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks.

    The same definition as ``numpy.percentile``'s default, without numpy.

    Raises:
        ValueError: ``values`` is empty or ``q`` is outside [0, 100].
    """
    if not values:
        raise ValueError("percentile of no values: the measurement produced no timings.")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"q must be in [0, 100], got {q}.")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Summary:
    """One scanner's figures, or ``error``: why it could not be measured."""

    name: str
    error: str | None = None
    p50_ms: float | None = None
    p95_ms: float | None = None
    p99_ms: float | None = None
    scans: int = 0
    throughput: float | None = None
    batch_api: str = ""
    length_ms: Mapping[str, float] | None = None
    length_cost: float | None = None
    stream_s: float | None = None
    stream_scans: int | None = None
    stream_vs_full: float | None = None
    cold_start_s: float | None = None
    peak_rss_mb: float | None = None
    cold_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(name: str, raw: Mapping[str, Any]) -> Summary:
    """Turn raw timings (seconds) into a :class:`Summary`.

    ``length_cost`` is the median scan time of the longest synthetic output over that of the
    shortest; ``stream_vs_full`` is the whole stream's scanning time over one full scan.
    """
    if raw.get("error"):
        return Summary(name, error=str(raw["error"]))
    latency = [float(x) for x in raw["latency_s"]]
    lengths = {k: percentile(v, 50) * 1000 for k, v in raw["length_s"].items()}
    by_tokens = sorted(lengths, key=int)
    stream, cold = raw["stream"], raw.get("cold") or {}
    batch = raw["batch"]
    return Summary(
        name,
        p50_ms=percentile(latency, 50) * 1000,
        p95_ms=percentile(latency, 95) * 1000,
        p99_ms=percentile(latency, 99) * 1000,
        scans=len(latency),
        throughput=batch["texts"] / batch["seconds"] if batch["seconds"] > 0 else math.inf,
        batch_api=str(batch.get("api", "")),
        length_ms=lengths,
        length_cost=lengths[by_tokens[-1]] / lengths[by_tokens[0]] if by_tokens else None,
        stream_s=float(stream["seconds"]),
        stream_scans=int(stream["scans"]),
        stream_vs_full=_div(stream["seconds"], stream["full_scan_s"]),
        cold_start_s=cold.get("seconds"),
        peak_rss_mb=cold.get("peak_rss_mb"),
        cold_error=cold.get("error"),
    )


def _div(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b <= 0:
        return None
    return float(a) / float(b)


#: (label, how to get the ratio "how many times better than the baseline" from two summaries).
_RATIOS: dict[str, Callable[[Summary, Summary], float | None]] = {
    "p50": lambda s, b: _div(b.p50_ms, s.p50_ms),
    "p95": lambda s, b: _div(b.p95_ms, s.p95_ms),
    "p99": lambda s, b: _div(b.p99_ms, s.p99_ms),
    "throughput": lambda s, b: _div(s.throughput, b.throughput),
    "longest output": lambda s, b: _div(_longest(b), _longest(s)),
    "stream": lambda s, b: _div(b.stream_s, s.stream_s),
    "cold start": lambda s, b: _div(b.cold_start_s, s.cold_start_s),
    "peak RSS": lambda s, b: _div(b.peak_rss_mb, s.peak_rss_mb),
}


def _longest(s: Summary) -> float | None:
    if not s.length_ms:
        return None
    return s.length_ms[max(s.length_ms, key=int)]


def ratios(summary: Summary, baseline: Summary | None) -> dict[str, float | None]:
    """How many times better ``summary`` is than ``baseline`` on each figure (>1: better).

    Empty when there is no baseline or either side could not be measured: a ratio is never
    made up.
    """
    if baseline is None or baseline.error or summary.error:
        return {}
    return {label: fn(summary, baseline) for label, fn in _RATIOS.items()}


@dataclass(frozen=True)
class Target:
    """A goal for the default scanner: ``value(summary, ratios) <op> bound``."""

    label: str
    bound: float
    op: str  # ">=" or "<="
    unit: str
    value: Callable[[Summary, Mapping[str, float | None]], float | None]
    needs_baseline: bool = False


@dataclass(frozen=True)
class TargetResult:
    label: str
    goal: str
    value: float | None
    status: str  # "pass", "FAIL" or "n/a"
    reason: str = ""


TARGETS: tuple[Target, ...] = (
    Target("p50 latency vs LLM Guard NoRefusal", 10, ">=", "x lower", lambda s, r: r.get("p50"),
           needs_baseline=True),
    Target("p99 latency vs LLM Guard NoRefusal", 5, ">=", "x lower", lambda s, r: r.get("p99"),
           needs_baseline=True),
    Target("cost of a 20k-token output / a 100-token one", 2, "<=", "x",
           lambda s, r: s.length_cost),
    Target("streamed 4k-token answer / one full scan", 3, "<=", "x", lambda s, r: s.stream_vs_full),
    Target("batch throughput", 200, ">=", "texts/s", lambda s, r: s.throughput),
    Target("cold start (import to first result)", 1.5, "<=", "s", lambda s, r: s.cold_start_s),
    Target("peak RSS", 400, "<=", "MB", lambda s, r: s.peak_rss_mb),
)  # fmt: skip


def check_targets(
    summary: Summary,
    ratio: Mapping[str, float | None],
    *,
    baseline_reason: str | None,
    targets: Sequence[Target] = TARGETS,
) -> list[TargetResult]:
    """Pass or fail each target; "n/a" with the reason where a figure is missing."""
    out: list[TargetResult] = []
    for t in targets:
        goal = f"{t.op} {t.bound:g} {t.unit}"
        if summary.error:
            out.append(TargetResult(t.label, goal, None, "n/a", summary.error))
            continue
        if t.needs_baseline and not ratio:
            # Why there is none is said once, under the table, not once per target.
            out.append(TargetResult(t.label, goal, None, "n/a", "no baseline"))
            continue
        value = t.value(summary, ratio)
        if value is None:
            why = summary.cold_error or "not measured"
            out.append(TargetResult(t.label, goal, None, "n/a", why))
            continue
        ok = value >= t.bound if t.op == ">=" else value <= t.bound
        out.append(TargetResult(t.label, goal, value, "pass" if ok else "FAIL"))
    return out


#: What each column measures, printed under the table.
NOTES: tuple[str, ...] = (
    "p50/p95/p99: single `scan()` calls, one after another, over the mixed sample. "
    "batch: `scan_batch` over the sample (LLM Guard has no batch API: a loop of `scan()`). "
    "20k / 100 tokens: median scan time of a 20k-token output over that of a 100-token one. "
    "stream: `stream(prompt)`, every delta fed, then `finish()`, over one full scan of the same "
    "text, with the number of classifier calls (LLM Guard: its streaming example, the whole "
    "text rescanned at every delta). cold start: a fresh process, import to first result. "
    "peak RSS: that process's high-water mark (VmHWM) after a batch of 32 more texts.",
)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "—"
    if math.isinf(value):
        return "∞"
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1 or digits == 0:
        return f"{value:.{digits}f}"
    return f"{value:.{digits + 1}g}" if value else "0"


def _ratio(value: float | None) -> str:
    return "—" if value is None else f"{_fmt(value)}x"


def render_markdown(
    summaries: Sequence[Summary],
    all_ratios: Mapping[str, Mapping[str, float | None]],
    targets: Sequence[TargetResult],
    *,
    primary: str,
    baseline_name: str,
    baseline_reason: str | None,
    header: Sequence[str] = (),
) -> str:
    """The report: figures per scanner, ratios to the baseline, targets, then notes."""
    lines = [*header, ""] if header else []
    lines += [
        "| scanner | p50 ms | p95 ms | p99 ms | batch texts/s | 20k / 100 tokens | "
        "stream (scans) / full scan | cold start s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        if s.error:
            why = "see below" if s.name == baseline_name and baseline_reason else _cell(s.error)
            lines.append(f"| {s.name} | unavailable: {why} |||||||| ")
            continue
        stream = f"{_ratio(s.stream_vs_full)} ({s.stream_scans})"
        lines.append(
            f"| {s.name} | {_fmt(s.p50_ms, 2)} | {_fmt(s.p95_ms, 2)} | {_fmt(s.p99_ms, 2)} | "
            f"{_fmt(s.throughput)} | {_ratio(s.length_cost)} | {stream} | "
            f"{_fmt(s.cold_start_s, 2)} | {_fmt(s.peak_rss_mb, 0)} |"
        )
    lines += ["", *NOTES, ""]
    if baseline_reason:
        lines.append(f"**No ratios: {baseline_name} could not run.** {baseline_reason}")
    else:
        labels = list(_RATIOS)
        lines += [
            f"Times better than {baseline_name} (same inputs, same run; >1 is better):",
            "",
            "| scanner | " + " | ".join(labels) + " |",
            "|---|" + "---:|" * len(labels),
        ]
        for s in summaries:
            r = all_ratios.get(s.name) or {}
            if s.name == baseline_name or not r:
                continue
            lines.append(f"| {s.name} | " + " | ".join(_ratio(r.get(k)) for k in labels) + " |")
    lines += ["", f"Targets for {primary}:", "", "| target | goal | measured | result |"]
    lines.append("|---|---|---:|---|")
    for t in targets:
        result = t.status if not t.reason else f"{t.status} ({_cell(t.reason)})"
        lines.append(f"| {t.label} | {t.goal} | {_fmt(t.value, 2)} | {result} |")
    return "\n".join(lines) + "\n"


def _cell(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split()).replace("|", "\\|")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
