"""Benchmark measurements: norefusal in process and in a fresh process, LLM Guard in its own venv.

Every function returns raw timings in seconds, in the shape the LLM Guard baseline script
(``benchmarks/llm_guard_baseline.py``) prints, so that :mod:`norefusal.bench._report` computes
the statistics of both sides the same way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from .._scanner import NoRefusalScanner
from ._inputs import BenchInputs

__all__ = [
    "BASELINE_NAME",
    "CREATE_BASELINE_VENV",
    "BaselineOutcome",
    "cold_start",
    "measure_scanner",
    "run_baseline",
]

#: The scanner the ratios are taken against, as the baseline script names it.
BASELINE_NAME = "llm-guard NoRefusal"
_RAW_KEYS = ("latency_s", "batch", "length_s", "stream")


def _timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure_scanner(scanner: NoRefusalScanner, inputs: BenchInputs) -> dict[str, Any]:
    """Latency, batch throughput, cost versus length and streaming of one loaded scanner.

    Latency is single :meth:`~NoRefusalScanner.scan` calls over the sample, sequentially,
    after a warm-up; throughput is :meth:`~NoRefusalScanner.scan_batch` over the sample; the
    stream is fed delta by delta through :meth:`~NoRefusalScanner.stream`, then finished.
    """
    cfg = inputs.settings
    sample = inputs.sample
    scanner.load()
    for prompt, output in sample[: cfg["warmup"]]:
        scanner.scan(prompt, output)
    latency = [
        _timed(partial(scanner.scan, p, o)) for _ in range(cfg["repeats"]) for p, o in sample
    ]
    start = time.perf_counter()
    for _ in range(cfg["batch_repeats"]):
        scanner.scan_batch(sample)
    batch = {
        "texts": len(sample) * cfg["batch_repeats"],
        "seconds": time.perf_counter() - start,
        "api": "scan_batch",
    }
    lengths = {
        key: [_timed(partial(scanner.scan, "", text)) for _ in range(cfg["length_repeats"])]
        for key, text in inputs.lengths.items()
    }
    monitor = scanner.stream(inputs.stream_prompt)
    start = time.perf_counter()
    for delta in inputs.deltas:
        monitor.feed(delta)
    monitor.finish()
    seconds = time.perf_counter() - start
    text = "".join(inputs.deltas)
    full = sorted(_timed(lambda: scanner.scan(inputs.stream_prompt, text)) for _ in range(3))[1]
    stream = {
        "seconds": seconds,
        "scans": monitor.scans,
        "deltas": len(inputs.deltas),
        "full_scan_s": full,
    }
    return {"latency_s": latency, "batch": batch, "length_s": lengths, "stream": stream}


# Runs in a fresh interpreter: the clock starts before norefusal (or numpy) is imported.
_COLD_CODE = """
import json, sys, time
spec = json.loads(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as fh:
    sample = [tuple(p) for p in json.load(fh)["sample"]]
start = time.perf_counter()
from norefusal import NoRefusalScanner
scanner = NoRefusalScanner(**spec)
scanner.scan(*sample[0])
seconds = time.perf_counter() - start
scanner.scan_batch(sample[:32])  # one full batch
try:  # this process's own high-water mark: ru_maxrss would include the parent's, from fork
    with open("/proc/self/status", encoding="ascii") as fh:
        peak_mb = next(int(l.split()[1]) for l in fh if l.startswith("VmHWM:")) / 1024
except (OSError, StopIteration):
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak_mb = peak / 2**20 if sys.platform == "darwin" else peak / 1024
print(json.dumps({"seconds": seconds, "peak_rss_mb": peak_mb}))
"""


def cold_start(
    spec: Mapping[str, Any], inputs_path: Path, *, timeout_s: float = 600
) -> dict[str, Any]:
    """Import to first result in a fresh interpreter, then the peak RSS after a batch scan.

    ``spec`` holds the scanner's keyword arguments. A failure comes back as ``{"error": ...}``.
    """
    args = [sys.executable, "-c", _COLD_CODE, json.dumps(dict(spec)), str(inputs_path)]
    try:
        proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"the cold-start process ran over {timeout_s:g} s"}
    if proc.returncode != 0:
        return {"error": f"the cold-start process exited {proc.returncode}: {_tail(proc.stderr)}"}
    try:
        return dict(json.loads(proc.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError):
        return {"error": f"the cold-start process printed no result: {_tail(proc.stdout)}"}


#: How to make the baseline's virtualenv, in the words the report prints.
CREATE_BASELINE_VENV = (
    "create it with `python3 -m venv .venv-llmguard && .venv-llmguard/bin/pip install "
    "-c constraints.txt llm-guard==0.3.16` in the norefusal repository"
)


@dataclass(frozen=True)
class BaselineOutcome:
    """LLM Guard's side of the run: raw timings per scanner, or why there are none."""

    raw: dict[str, dict[str, Any]] = field(default_factory=dict)
    reason: str | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.reason is None


def run_baseline(
    python: Path | None,
    script: Path,
    inputs_path: Path,
    *,
    cache: Path,
    corpus: Path | None,
    timeout_s: float,
) -> BaselineOutcome:
    """Run the LLM Guard baseline script with ``python`` (a virtualenv with llm-guard 0.3.16).

    Never raises: anything that keeps the baseline from running becomes the outcome's
    ``reason``, which the report prints instead of any ratio.
    """
    if python is None:
        return BaselineOutcome(
            reason="no LLM Guard virtualenv (.venv-llmguard/bin/python not found): "
            f"{CREATE_BASELINE_VENV}, or pass --llm-guard-python PATH."
        )
    if not python.exists():
        return BaselineOutcome(
            reason=f"--llm-guard-python {python} does not exist: {CREATE_BASELINE_VENV}."
        )
    if not script.is_file():
        return BaselineOutcome(
            reason=f"the baseline script {script} is missing: pass --baseline-script PATH "
            "(benchmarks/llm_guard_baseline.py in the norefusal repository)."
        )
    out = inputs_path.with_name("baseline.json")
    args = [str(python), str(script), "--inputs", str(inputs_path), "--out", str(out)]
    args += ["--cache", str(cache)] + (["--corpus", str(corpus)] if corpus else [])
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    try:
        proc = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout_s, env=env, check=False
        )
    except subprocess.TimeoutExpired:
        return BaselineOutcome(reason=f"the baseline ran over --baseline-timeout {timeout_s:g} s.")
    except OSError as exc:
        return BaselineOutcome(reason=f"could not start {python}: {exc}.")
    try:
        result = json.loads(out.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return BaselineOutcome(
            reason=f"the baseline exited {proc.returncode} without results: "
            f"{_tail(proc.stderr or proc.stdout)}"
        )
    if not isinstance(result, dict) or not result.get("ok"):
        error = result.get("error") if isinstance(result, dict) else None
        return BaselineOutcome(reason=f"the baseline failed: {error or 'no error given'}.")
    scanners = result.get("scanners")
    if not isinstance(scanners, dict) or not all(
        isinstance(raw, dict) and all(k in raw for k in _RAW_KEYS) for raw in scanners.values()
    ):
        return BaselineOutcome(reason="the baseline's results are malformed (missing timings).")
    if BASELINE_NAME not in scanners:
        return BaselineOutcome(reason=f"the baseline did not measure {BASELINE_NAME!r}.")
    return BaselineOutcome(raw=scanners, versions=dict(result.get("versions") or {}))


def _tail(text: str, limit: int = 600) -> str:
    flat = " ".join(text.split())
    return flat[-limit:] if flat else "(no output)"
