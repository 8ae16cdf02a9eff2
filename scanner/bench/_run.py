"""``norefusal bench``: speed of norefusal's scanners next to LLM Guard's NoRefusal, in one run.

Every scanner is measured on the same inputs (a seeded sample of real responses, synthetic 2k,
8k and 20k-token outputs, a streamed 4k-token answer): p50/p95/p99 latency of single scans,
batch throughput, cost versus output length, streaming cost, cold start and peak RSS of a fresh
process. LLM Guard's NoRefusal and NoRefusalLight run from their own package in their own
virtualenv (``benchmarks/llm_guard_baseline.py``), and the report gives each figure's ratio to
NoRefusal, or says why there is none: a ratio is never printed without a baseline that ran.

    norefusal bench [--model DIR] [--llm-guard-python PATH] [--json FILE] [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .._errors import NoRefusalError
from .._scanner import NoRefusalScanner
from ._inputs import BenchInputs, load_inputs
from ._measure import (
    BASELINE_NAME,
    BaselineOutcome,
    cold_start,
    measure_scanner,
    run_baseline,
)
from ._report import Summary, check_targets, ratios, render_markdown, summarize

__all__ = ["main"]

_REPO = Path(__file__).resolve().parents[2]
#: (sample size, latency repeats, batch repeats, length repeats, warm-up scans, stream tokens,
#: stream delta characters) for a full and a ``--quick`` run.
_FULL = {"sample": 150, "repeats": 1, "batch_repeats": 1, "length_repeats": 5, "warmup": 5,
         "stream_tokens": 4000, "delta_chars": 64}  # fmt: skip
_QUICK = {"sample": 12, "repeats": 1, "batch_repeats": 1, "length_repeats": 3, "warmup": 2,
          "stream_tokens": 1000, "delta_chars": 256}  # fmt: skip


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="norefusal bench",
        description="Measure norefusal's speed next to LLM Guard's NoRefusal, on the same inputs.",
    )
    p.add_argument(
        "--data",
        type=Path,
        default=None,
        help="directory of *.jsonl rows with prompt/response/label (default: ../shared/data, "
        "from the current directory or the repository root)",
    )
    p.add_argument(
        "--model",
        default="default",
        help="the scanner the targets apply to: preset or ONNX model directory "
        "(default: %(default)s)",
    )
    p.add_argument("--backend", default=None, help="backend for --model (default: the model's)")
    p.add_argument(
        "--max-tokens", type=int, default=None, help="token cap for --model (default: the model's)"
    )
    p.add_argument(
        "--compare",
        default="keyword,norefusal-light",
        help="other presets to measure, comma-separated ('' for none; default: %(default)s)",
    )
    p.add_argument(
        "--transformers-model",
        type=Path,
        default=None,
        help="also measure this local Hugging Face model on the transformers backend",
    )
    p.add_argument(
        "--llm-guard-python",
        type=Path,
        default=None,
        help="python of a virtualenv with llm-guard==0.3.16 "
        "(default: .venv-llmguard/bin/python if present)",
    )
    p.add_argument(
        "--baseline-script",
        type=Path,
        default=_REPO / "benchmarks" / "llm_guard_baseline.py",
        help="the script that measures LLM Guard (default: benchmarks/llm_guard_baseline.py)",
    )
    p.add_argument(
        "--baseline-timeout", type=float, default=3600.0, help="seconds (default: %(default)g)"
    )
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="where the DistilRoBERTa-shaped baseline model is built once "
        "(default: ~/.cache/norefusal/bench)",
    )
    p.add_argument("--quick", action="store_true", help="small sample, few repeats (for CI)")
    p.add_argument("--sample", type=int, default=None, help="texts in the mixed sample")
    p.add_argument("--repeats", type=int, default=None, help="passes over the sample for latency")
    p.add_argument("--stream-delta", type=int, default=None, help="characters per stream delta")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default: 0)")
    p.add_argument("--json", type=Path, default=None, help="also write every figure here")
    p.add_argument("--check", action="store_true", help="exit 1 unless every target passes")
    return p


def _default_python() -> Path | None:
    for root in (Path.cwd(), _REPO):
        candidate = root / ".venv-llmguard" / "bin" / "python"
        if candidate.exists():
            return candidate
    return None


def _default_data() -> Path:
    relative = Path("../shared/data")
    for candidate in (relative, _REPO / relative):
        if candidate.is_dir():
            return candidate
    return relative


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "norefusal" / "bench"


def _scanner_specs(args: argparse.Namespace) -> list[dict[str, Any]]:
    specs: list[dict[str, Any]] = [
        {"model": str(args.model), "backend": args.backend, "max_tokens": args.max_tokens}
    ]
    for name in filter(None, (n.strip() for n in args.compare.split(","))):
        if name != args.model:
            specs.append({"model": name, "backend": None})
    if args.transformers_model is not None:
        specs.append({"model": str(args.transformers_model), "backend": "transformers"})
    return specs


def _label(spec: dict[str, Any], scanner: NoRefusalScanner | None) -> str:
    if scanner is None:
        return f"norefusal {Path(spec['model']).name or spec['model']}"
    return f"norefusal {scanner.model_name} ({scanner.backend_name})"


def _measure_norefusal(
    spec: dict[str, Any], inputs_path: Path, inputs: BenchInputs
) -> tuple[str, dict[str, Any]]:
    try:
        scanner = NoRefusalScanner(**{k: v for k, v in spec.items() if v is not None})
        name = _label(spec, scanner)
        _progress(f"measuring {name}")
        raw = measure_scanner(scanner, inputs)
    except (NoRefusalError, ValueError, OSError) as exc:
        return _label(spec, None), {"error": f"{type(exc).__name__}: {exc}"}
    raw["cold"] = cold_start({k: v for k, v in spec.items() if v is not None}, inputs_path)
    return name, raw


def _progress(message: str) -> None:
    print(f"norefusal bench: {message}", file=sys.stderr, flush=True)


def _machine() -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next(
                line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"cpu": cpu, "cores": os.cpu_count(), "load_average": load,
            "python": platform.python_version(), "platform": platform.platform()}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it ran (with ``--check``: and every target passed)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = _parser()
    args = parser.parse_args(argv)
    args.data = args.data or _default_data()
    cfg = dict(_QUICK if args.quick else _FULL)
    for key, option, value in (("sample", "--sample", args.sample),
                               ("repeats", "--repeats", args.repeats),
                               ("delta_chars", "--stream-delta", args.stream_delta)):  # fmt: skip
        if value is not None:
            if value < 1:
                parser.error(f"{option} must be >= 1.")
            cfg[key] = value
    try:
        inputs = load_inputs(
            args.data,
            sample_size=cfg["sample"],
            seed=args.seed,
            stream_tokens=cfg["stream_tokens"],
            delta_chars=cfg["delta_chars"],
            settings={k: cfg[k] for k in ("warmup", "repeats", "batch_repeats", "length_repeats")},
        )
    except (OSError, ValueError) as exc:  # no data, or too little: the command says so
        raise NoRefusalError(str(exc)) from None
    machine_before = _machine()
    raws: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="norefusal-bench-") as tmp:
        inputs_path = Path(tmp) / "inputs.json"
        inputs_path.write_text(json.dumps(inputs.to_json()), encoding="utf-8")
        for spec in _scanner_specs(args):
            name, raw = _measure_norefusal(spec, inputs_path, inputs)
            raws[name] = raw
        primary = next(iter(raws))
        python = args.llm_guard_python or _default_python()
        if python is not None and python.exists():  # else the report says why, once
            _progress(f"measuring {BASELINE_NAME} (its own virtualenv; this takes a while)")
        baseline = run_baseline(
            python,
            args.baseline_script,
            inputs_path,
            cache=args.cache or _cache_dir(),
            corpus=args.data if args.data.is_dir() else None,
            timeout_s=args.baseline_timeout,
        )
    report = _report(args, raws, primary, baseline, inputs.describe(), machine_before)
    report["command"] = ["norefusal", "bench", *argv]
    print(report["markdown"], end="")
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    if args.check and any(t["status"] != "pass" for t in report["targets"]):
        return 1
    return 0


def _report(
    args: argparse.Namespace,
    raws: dict[str, dict[str, Any]],
    primary: str,
    baseline: BaselineOutcome,
    described: dict[str, Any],
    machine: dict[str, Any],
) -> dict[str, Any]:
    summaries = [summarize(n, r) for n, r in raws.items()]
    summaries += [summarize(n, r) for n, r in baseline.raw.items()]
    if not baseline.ok:
        summaries.append(Summary(BASELINE_NAME, error=str(baseline.reason)))
    by_name = {s.name: s for s in summaries}
    base = by_name.get(BASELINE_NAME) if baseline.ok else None
    all_ratios = {s.name: ratios(s, base) for s in summaries if s.name in raws}
    targets = check_targets(by_name[primary], all_ratios[primary], baseline_reason=baseline.reason)
    machine = {**machine, "load_average_after": _machine()["load_average"]}
    header = [
        f"norefusal bench {'--quick ' if args.quick else ''}on {machine['cpu']} "
        f"({machine['cores']} cores, load average {_load(machine)}), Python {machine['python']}",
        f"inputs: {described['sample']} (seed {described['seed']}), outputs of "
        f"{described['length_chars']} characters, a {described['stream_chars']}-character "
        f"stream in {described['stream_deltas']} deltas",
    ]
    if baseline.versions:
        header.append("baseline: " + ", ".join(f"{k} {v}" for k, v in baseline.versions.items()))
    markdown = render_markdown(
        summaries, all_ratios, targets, primary=primary, baseline_name=BASELINE_NAME,
        baseline_reason=baseline.reason, header=header,
    )  # fmt: skip
    return {
        "machine": machine,
        "inputs": described,
        "primary": primary,
        "baseline": {"ok": baseline.ok, "reason": baseline.reason, "versions": baseline.versions},
        "summaries": [s.to_dict() for s in summaries],
        "ratios": all_ratios,
        "targets": [asdict(t) for t in targets],
        "markdown": markdown,
        "raw": {**raws, **baseline.raw},
    }


def _load(machine: dict[str, Any]) -> str:
    before, after = machine.get("load_average"), machine.get("load_average_after")
    if not before:
        return "unknown"
    return f"{before[0]:.1f} at start, {after[0]:.1f} at end" if after else f"{before[0]:.1f}"
