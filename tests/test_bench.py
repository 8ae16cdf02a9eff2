"""`norefusal bench`: percentiles, ratios, targets, the report, and the harness end to end.

The harness runs in quick mode on tiny inputs with the keyword preset; the LLM Guard baseline
is missing, failing, or a fake script printing fixed timings. Nothing asserts on time.
"""

from __future__ import annotations

import importlib.util
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from norefusal import _cli
from norefusal.bench import main
from norefusal.bench._inputs import CHARS_PER_TOKEN, load_inputs
from norefusal.bench._measure import BASELINE_NAME, run_baseline
from norefusal.bench._report import (
    Summary,
    check_targets,
    percentile,
    ratios,
    render_markdown,
    summarize,
)

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I cannot assist with this request.",
    "Sorry, I won't provide that information.",
]
SHORT = ["Paris.", "The answer is 42.", "Use `sorted(xs)` to sort a list in Python."]
LONG = [
    " ".join(f"Step {i}: mix the flour and the water, then knead the dough." for i in range(40)),
    " ".join(f"Paragraph {i} explains the history of the printing press." for i in range(45)),
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    rows = [{"prompt": "q", "response": r, "label": "refusal"} for r in REFUSALS]
    rows += [{"prompt": "q", "response": r, "label": "compliance"} for r in SHORT + LONG]
    (folder / "tiny.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return folder


def raw(latency: float, *, cold: float = 1.0, rss: float = 300.0) -> dict[str, Any]:
    """Raw timings as both sides of the harness produce them."""
    return {
        "latency_s": [latency] * 9 + [latency * 3],
        "batch": {"texts": 100, "seconds": latency * 50, "api": "scan_batch"},
        "length_s": {"100": [latency], "2000": [latency * 1.2], "20000": [latency * 1.5]},
        "stream": {"seconds": latency * 4, "scans": 4, "deltas": 60, "full_scan_s": latency},
        "cold": {"seconds": cold, "peak_rss_mb": rss},
    }


# -- statistics ----------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0, 1, 25, 50, 90, 95, 99, 100])
def test_percentile_matches_numpy(q: float) -> None:
    rng = random.Random(q)
    for n in (1, 2, 7, 100, 1001):
        values = [rng.expovariate(1.0) for _ in range(n)]
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))


def test_percentile_interpolates_and_rejects_bad_input() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5
    assert percentile([5.0], 99) == 5.0
    with pytest.raises(ValueError, match="no timings"):
        percentile([], 50)
    with pytest.raises(ValueError, match=r"\[0, 100\]"):
        percentile([1.0], 101)


def test_summarize_and_ratios() -> None:
    ours = summarize("ours", raw(0.002, cold=0.5, rss=200))
    base = summarize(BASELINE_NAME, raw(0.1, cold=5.0, rss=1000))
    assert ours.p50_ms == pytest.approx(2.0)
    assert ours.p99_ms == pytest.approx(percentile([2.0] * 9 + [6.0], 99))
    assert ours.throughput == pytest.approx(100 / 0.1)
    assert ours.length_cost == pytest.approx(1.5)
    assert ours.stream_vs_full == pytest.approx(4.0)
    r = ratios(ours, base)
    assert r["p50"] == pytest.approx(50.0)
    assert r["throughput"] == pytest.approx(50.0)
    assert r["cold start"] == pytest.approx(10.0)
    assert r["peak RSS"] == pytest.approx(5.0)
    # No baseline, or a baseline that failed: no ratio at all.
    assert ratios(ours, None) == {}
    assert ratios(ours, Summary(BASELINE_NAME, error="it broke")) == {}


def test_targets_pass_fail_and_not_applicable() -> None:
    ours = summarize("ours", raw(0.002, cold=0.5, rss=200))
    base = summarize(BASELINE_NAME, raw(0.1))
    results = {t.label: t for t in check_targets(ours, ratios(ours, base), baseline_reason=None)}
    assert results["p50 latency vs LLM Guard NoRefusal"].status == "pass"
    assert results["streamed 4k-token answer / one full scan"].status == "FAIL"  # 4x > 3x
    assert results["batch throughput"].status == "pass"
    assert results["peak RSS"].status == "pass"
    missing = check_targets(ours, {}, baseline_reason="no venv")
    by_label = {t.label: t for t in missing}
    assert by_label["p99 latency vs LLM Guard NoRefusal"].status == "n/a"
    # The reason is the report's, said once; each target only says it had no baseline.
    assert by_label["p99 latency vs LLM Guard NoRefusal"].reason == "no baseline"
    assert by_label["peak RSS"].status == "pass"  # figures of our own still count
    broken = check_targets(Summary("ours", error="model missing"), {}, baseline_reason=None)
    assert {t.status for t in broken} == {"n/a"}


def test_render_markdown_with_and_without_baseline() -> None:
    ours = summarize("ours", raw(0.002))
    base = summarize(BASELINE_NAME, raw(0.1))
    text = render_markdown(
        [ours, base],
        {"ours": ratios(ours, base)},
        check_targets(ours, ratios(ours, base), baseline_reason=None),
        primary="ours",
        baseline_name=BASELINE_NAME,
        baseline_reason=None,
        header=["a header line"],
    )
    assert text.startswith("a header line\n")
    assert "| ours | 2.00 |" in text
    assert "| ours | 50.0x | 50.0x |" in text  # p50 and p95 ratios
    assert "No ratios" not in text
    failed = Summary(BASELINE_NAME, error="venv | missing")
    broken = Summary("theirs", error="model | missing")
    text = render_markdown(
        [ours, broken, failed],
        {"ours": ratios(ours, failed)},
        check_targets(ours, {}, baseline_reason="venv missing"),
        primary="ours",
        baseline_name=BASELINE_NAME,
        baseline_reason="venv missing",
    )
    assert "**No ratios: llm-guard NoRefusal could not run.** venv missing" in text
    assert text.count("venv missing") == 1  # said once, not in every row and target
    assert f"| {BASELINE_NAME} | unavailable: see below |" in text
    assert "| theirs | unavailable: model \\| missing |" in text  # a pipe cannot break the table
    assert "n/a (no baseline)" in text
    assert "Times better" not in text
    assert "x lower" in text  # the target's goal is still listed, as n/a


# -- inputs --------------------------------------------------------------------------------


def test_inputs_are_seeded_and_mixed(data: Path) -> None:
    a = load_inputs(data, sample_size=12, seed=3, stream_tokens=500, delta_chars=50)
    b = load_inputs(data, sample_size=12, seed=3, stream_tokens=500, delta_chars=50)
    assert a == b
    assert a.composition == {"short refusals": 4, "short answers": 4, "long answers": 4}
    outputs = [o for _, o in a.sample]
    assert sum(o in REFUSALS for o in outputs) == 4
    assert sum(o in LONG for o in outputs) == 4
    assert all(
        len(text) <= int(k) * CHARS_PER_TOKEN and len(text) > int(k) * CHARS_PER_TOKEN // 2
        for k, text in a.lengths.items()
    )
    assert all(len(d) <= 50 for d in a.deltas)
    assert 0 < len("".join(a.deltas)) <= 500 * CHARS_PER_TOKEN


def test_inputs_errors(tmp_path: Path, data: Path) -> None:
    with pytest.raises(FileNotFoundError, match="--data"):
        load_inputs(tmp_path / "nowhere", sample_size=6)
    (data / "tiny.jsonl").write_text(json.dumps({"response": "Paris.", "label": "compliance"}))
    with pytest.raises(ValueError, match="short refusal"):
        load_inputs(data, sample_size=6)


# -- the harness end to end ----------------------------------------------------------------


def run_bench(data: Path, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    out = tmp_path / "bench.json"
    code = main(
        [
            *("--quick", "--data", str(data), "--model", "keyword", "--compare", ""),
            *("--cache", str(tmp_path / "cache"), "--json", str(out), *extra),
        ]
    )
    return code, json.loads(out.read_text()) if out.exists() else {}


def test_no_baseline_prints_reason_and_no_ratio(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-venv" / "bin" / "python"
    code, report = run_bench(data, tmp_path, "--llm-guard-python", str(missing))
    printed = capsys.readouterr().out
    assert code == 0
    assert f"**No ratios: llm-guard NoRefusal could not run.** --llm-guard-python {missing}" in (
        printed
    )
    assert "Times better" not in printed
    assert report["baseline"]["ok"] is False
    assert "does not exist" in report["baseline"]["reason"]
    assert "python3 -m venv .venv-llmguard" in report["baseline"]["reason"]  # how to make one
    assert printed.count("does not exist") == 1
    assert report["ratios"] == {"norefusal keyword (keyword)": {}}
    summary = report["summaries"][0]
    assert summary["name"] == "norefusal keyword (keyword)"
    assert summary["scans"] == 12
    assert summary["stream_scans"] >= 1
    assert summary["peak_rss_mb"] > 0
    assert summary["cold_start_s"] > 0
    targets = {t["label"]: t for t in report["targets"]}
    assert targets["p50 latency vs LLM Guard NoRefusal"]["status"] == "n/a"
    assert targets["p50 latency vs LLM Guard NoRefusal"]["value"] is None
    assert targets["batch throughput"]["status"] in ("pass", "FAIL")
    assert report["command"][:3] == ["norefusal", "bench", "--quick"]
    # --check fails the run when a target could not be checked.
    code, _ = run_bench(data, tmp_path, "--llm-guard-python", str(missing), "--check")
    assert code == 1


def fake_baseline(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake_baseline.py"
    script.write_text(
        "import argparse, json, sys\n"
        "p = argparse.ArgumentParser()\n"
        "for a in ('--inputs', '--out', '--cache', '--corpus'): p.add_argument(a)\n"
        "args = p.parse_args()\n" + body
    )
    return script


def test_failing_baseline_gives_its_reason(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    script = fake_baseline(
        tmp_path,
        "open(args.out, 'w').write(json.dumps({'ok': False, 'error': 'no torch here'}))\n"
        "sys.exit(1)\n",
    )
    code, report = run_bench(
        data, tmp_path, "--llm-guard-python", sys.executable, "--baseline-script", str(script)
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "the baseline failed: no torch here" in printed
    assert "Times better" not in printed
    assert report["baseline"]["ok"] is False


def test_baseline_crash_without_results(tmp_path: Path) -> None:
    script = fake_baseline(tmp_path, "print('Traceback: ImportError llm_guard'); sys.exit(3)\n")
    (tmp_path / "inputs.json").write_text("{}")
    outcome = run_baseline(
        Path(sys.executable),
        script,
        tmp_path / "inputs.json",
        cache=tmp_path,
        corpus=None,
        timeout_s=60,
    )
    assert not outcome.ok
    assert outcome.reason is not None
    assert "exited 3 without results" in outcome.reason
    assert "ImportError llm_guard" in outcome.reason
    assert outcome.raw == {}


def test_fake_baseline_gives_ratios(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A fake LLM Guard that takes a fixed 0.5 s per scan: ratios come from the same run's figures.
    timings = raw(0.5, cold=9.0, rss=1200)
    script = fake_baseline(
        tmp_path,
        f"scanners = {{'{BASELINE_NAME}': {timings!r}}}\n"
        "open(args.out, 'w').write(json.dumps({'ok': True, 'scanners': scanners,"
        " 'versions': {'llm-guard': '0.3.16'}}))\n",
    )
    code, report = run_bench(
        data, tmp_path, "--llm-guard-python", sys.executable, "--baseline-script", str(script)
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert report["baseline"] == {"ok": True, "reason": None, "versions": {"llm-guard": "0.3.16"}}
    assert "Times better than llm-guard NoRefusal" in printed
    assert "baseline: llm-guard 0.3.16" in printed
    ours = report["summaries"][0]
    ratio = report["ratios"][ours["name"]]
    assert ratio["p50"] == pytest.approx(500.0 / ours["p50_ms"])
    assert ratio["peak RSS"] == pytest.approx(1200 / ours["peak_rss_mb"])
    targets = {t["label"]: t for t in report["targets"]}
    assert targets["p50 latency vs LLM Guard NoRefusal"]["value"] == pytest.approx(ratio["p50"])
    assert targets["p50 latency vs LLM Guard NoRefusal"]["status"] in ("pass", "FAIL")


def test_missing_default_model_is_reported_not_raised(
    data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    code = _cli.main(  # through the `norefusal bench` command
        [
            "bench",
            *("--quick", "--data", str(data), "--model", str(tmp_path / "no-model")),
            *("--compare", "", "--llm-guard-python", str(tmp_path / "none"), "--json", str(out)),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    assert report["summaries"][0]["error"].startswith("ModelLoadError")
    assert {t["status"] for t in report["targets"]} == {"n/a"}
    assert "unavailable: ModelLoadError" in capsys.readouterr().out


def test_bad_arguments_are_usage_errors_and_no_data_is_an_error(
    tmp_path: Path, data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli.main(["bench", "--quick", "--data", str(tmp_path / "nowhere")]) == 1
    assert "norefusal bench: error: No *.jsonl data files" in capsys.readouterr().err
    assert _cli.main(["bench", "--quick", "--data", str(data), "--stream-delta", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: norefusal bench")
    assert "--stream-delta must be >= 1" in err


# -- the LLM Guard side, without llm-guard: its measurements produce what the harness reads --


@pytest.fixture
def baseline_module() -> Any:
    path = Path(__file__).resolve().parent.parent / "benchmarks" / "llm_guard_baseline.py"
    spec = importlib.util.spec_from_file_location("llm_guard_baseline", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # stdlib imports only at module level
    return module


class CountingScanner:
    """Stands in for LLM Guard's NoRefusal: ``scan(prompt, output)`` as its protocol has it."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def scan(self, prompt: str, output: str) -> tuple[str, bool, float]:
        self.seen.append(output)
        return output, True, -1.0


def test_baseline_measurements_feed_the_harness(baseline_module: Any, data: Path) -> None:
    inputs = load_inputs(data, sample_size=6, stream_tokens=100, delta_chars=40)
    spec = {**inputs.to_json(), "warmup": 1, "repeats": 2, "batch_repeats": 1, "length_repeats": 2}
    scanner = CountingScanner()
    measured = baseline_module.measure(scanner, spec)
    summary = summarize(BASELINE_NAME, {**measured, "cold": {"seconds": 1.0, "peak_rss_mb": 9}})
    assert summary.error is None
    assert summary.scans == 12  # 6 texts, twice
    assert summary.batch_api == "scan() loop (no batch API)"
    assert set(summary.length_ms or {}) == set(inputs.lengths)
    # LLM Guard's streaming example: every delta past the first 30 characters rescans it all.
    grown = [sum(len(d) for d in inputs.deltas[: i + 1]) for i in range(len(inputs.deltas))]
    assert summary.stream_scans == sum(n > 30 for n in grown)
    stream_texts = [t for t in scanner.seen if "".join(inputs.deltas).startswith(t)]
    assert len(stream_texts) >= summary.stream_scans
    texts = list(baseline_module.corpus_texts(spec, data))
    assert "I'm sorry, but I can't help with that." in texts
