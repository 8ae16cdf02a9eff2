"""Independent checks: labelled sets kept out of training and tuning, read from a given path.

Two public sources are reserved for these checks (issue 11): never train, tune or choose a
threshold on them, and never copy them into the project. Fetch them yourself and pass the
path:

* ``chatgpt-refusals``: maxwellreuter/chatgpt-refusals (MIT; checked at commit
  ``37d405b88624b2512b4ad44efa4067a73713aeec``), ``data/all_hand_labeled.json``: 1,721
  gpt-3.5-turbo answers hand-labelled with a ``tone``. ``complied`` is compliance and
  ``rejected`` a refusal (1,406 rows: the binary figures). The other tones do not map onto
  the refusal definition row by row (``redirected`` holds both redirects in place of an
  answer and disclaimer-then-overview answers), so they are reported apart as the share
  flagged; ``dontknow`` and ``incoherent`` are left out, as in the paper. The figure the
  issue asks for is the false-positive rate on ``complied`` answers that open with a
  disclaimer (:func:`opens_with_disclaimer`). ``paper_mapping`` repeats the authors'
  binarisation (every tone but ``complied`` a refusal) for comparison with their 96.5%.
* ``xstest``: paul-rottger/exaggerated-safety (prompts CC-BY-4.0, completions under the
  generating models' terms; checked at commit ``d7bb5bd738c1fcbc36edd83d5e7d1b71a3e2d84d``),
  ``model_completions/xstest_v2_completions_*.csv``. ``../shared/data/xstest_human.jsonl``
  holds the Llama-2 (``llama2orig``, ``llama2new``) and Mistral (``mistralinstruct``) files;
  ``gpt4`` and ``mistralguard`` (Mistral-7B-Instruct with a guardrail system prompt) are not
  in it, 450 gold-labelled rows each: those are the independent ones.

Usage::

    python -m norefusal.evaluation._independent chatgpt-refusals PATH/all_hand_labeled.json
    python -m norefusal.evaluation._independent xstest PATH/xstest_v2_completions_gpt4.csv \\
        --mode both --model keyword
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import NoRefusalError
from ._eval import MODES, Example, Scorer, binary_metrics, evaluate, scanner_scorer, summary

__all__ = [
    "chatgpt_refusals_report",
    "main",
    "opens_with_disclaimer",
    "read_chatgpt_refusals",
    "read_xstest_completions",
    "xstest_report",
]

_BINARY_TONES = {"complied": "compliance", "rejected": "refusal"}
_LEFT_OUT_TONES = ("dontknow", "incoherent")
_XSTEST_LABELS = {
    "1_full_compliance": "compliance",
    "2_full_refusal": "refusal",
    "3_partial_refusal": "partial_refusal",
}
_DISCLAIMER = re.compile(
    r"\bas an? (?:ai|artificial intelligence)\b|language model|\bi'?m (?:just )?an ai\b|"
    r"\bi am (?:just )?an ai\b|\bi (?:don'?t|do not) have (?:personal|any personal|opinions|"
    r"feelings|emotions|beliefs|preferences)|\bi'?m not (?:a|an) (?:doctor|lawyer|medical|"
    r"financial|licensed|legal)|\bnot (?:medical|legal|financial) advice",
    re.IGNORECASE,
)


def opens_with_disclaimer(response: str) -> bool:
    """Whether an AI or professional disclaimer stands in the first 200 characters."""
    return _DISCLAIMER.search(response[:200]) is not None


def read_chatgpt_refusals(path: str | Path) -> list[dict[str, Any]]:
    """Rows of ``all_hand_labeled.json`` as ``{id, prompt, response, tone}``, in file order."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NoRefusalError(f"Cannot read {path}: {exc}.") from None
    if not isinstance(data, list) or not all(
        isinstance(r, dict) and {"prompt", "response", "tone"} <= r.keys() for r in data
    ):
        raise NoRefusalError(f"{path} is not a list of rows with prompt, response and tone.")
    return [{"id": f"cr-{i}", "prompt": r["prompt"], "response": r["response"], "tone": r["tone"]}
            for i, r in enumerate(data)]  # fmt: skip


def read_xstest_completions(path: str | Path) -> list[Example]:
    """An XSTest completions CSV as labelled examples (``category`` is the prompt type)."""
    path = Path(path)
    model = path.stem.removeprefix("xstest_v2_completions_")
    try:
        with path.open(encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
    except OSError as exc:
        raise NoRefusalError(f"Cannot read {path}: {exc}.") from None
    examples = []
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        label = _XSTEST_LABELS.get(row.get("final_label", ""))
        if label is None or row.get("completion") is None:
            raise NoRefusalError(f"{path}, line {n}: no completion or an unknown final_label.")
        examples.append(Example(
            line=n, id=f"xstest-{model}-{row['id']}", prompt=row.get("prompt") or "",
            response=row["completion"], label=label, source=f"xstest:{model}", model=model,
            category=row.get("type") or None,
        ))  # fmt: skip
    if not examples:
        raise NoRefusalError(f"{path} holds no rows.")
    return examples


def _pairs(rows: Sequence[Any], mode: str) -> list[tuple[str, str]]:
    def get(r: Any, key: str) -> str:
        return str(r[key] if isinstance(r, dict) else getattr(r, key))

    return [("" if mode == "response-only" else get(r, "prompt"), get(r, "response")) for r in rows]


def chatgpt_refusals_report(
    rows: Sequence[dict[str, Any]], scores: Sequence[float], threshold: float
) -> dict[str, Any]:
    """Figures for scored ``chatgpt-refusals`` rows (see the module docstring)."""
    s = np.asarray(scores, dtype=np.float64)
    flagged = s > threshold
    tones = [str(r["tone"]) for r in rows]
    binary = [i for i, t in enumerate(tones) if t in _BINARY_TONES]
    labels = [_BINARY_TONES[tones[i]] for i in binary]
    report: dict[str, Any] = {"threshold": threshold, "rows": len(rows)}
    report["binary"] = binary_metrics(s[binary], labels, threshold)
    for name, want in (("disclaimer_then_answer", True), ("complied_without_disclaimer", False)):
        idx = [i for i in binary if tones[i] == "complied"
               and opens_with_disclaimer(str(rows[i]["response"])) is want]  # fmt: skip
        report[name] = {"n": len(idx), "flagged": int(flagged[idx].sum()),
                        "fpr": float(flagged[idx].mean()) if idx else None}  # fmt: skip
    report["other_tones"] = {
        t: {"n": int(sum(x == t for x in tones)),
            "flagged": float(np.mean([flagged[i] for i, x in enumerate(tones) if x == t]))}
        for t in sorted(set(tones) - _BINARY_TONES.keys() - set(_LEFT_OUT_TONES))
    }  # fmt: skip
    paper = [i for i, t in enumerate(tones) if t not in _LEFT_OUT_TONES]
    report["paper_mapping"] = binary_metrics(
        s[paper], ["compliance" if tones[i] == "complied" else "refusal" for i in paper], threshold
    )
    return report


def _chatgpt_summary(report: dict[str, Any]) -> str:
    def f(x: float | None) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    b, d, c = (
        report["binary"],
        report["disclaimer_then_answer"],
        report["complied_without_disclaimer"],
    )
    p = report["paper_mapping"]
    lines = [
        f"threshold {report['threshold']:.2f}  rows {report['rows']}  binary {b['n']} "
        f"(refusals {b['refusals']})",
        f"binary (complied vs rejected): P {f(b['precision'])}  R {f(b['recall'])}  "
        f"F1 {f(b['f1'])}  accuracy {f(b['accuracy'])}  FPR {f(b['fpr'])}",
        f"disclaimer, then the answer: FPR {f(d['fpr'])} ({d['flagged']}/{d['n']})",
        f"complied, no disclaimer:     FPR {f(c['fpr'])} ({c['flagged']}/{c['n']})",
        f"paper's mapping (every tone but complied a refusal): F1 {f(p['f1'])}  "
        f"accuracy {f(p['accuracy'])}",
        "other tones, share flagged: " + ", ".join(
            f"{t} {f(m['flagged'])} (n {m['n']})" for t, m in report["other_tones"].items()),
    ]  # fmt: skip
    return "\n".join(lines)


def _run(kind: str, path: Path, scorer: Scorer, threshold: float, mode: str) -> dict[str, Any]:
    modes = ("with-prompt", "response-only") if mode == "both" else (mode,)
    out: dict[str, Any] = {"file": str(path), "check": kind}
    if kind == "chatgpt-refusals":
        rows: Sequence[Any] = read_chatgpt_refusals(path)
    else:
        rows = read_xstest_completions(path)
    for m in modes:
        pairs = _pairs(rows, m)
        scores = list(scorer(pairs))
        if len(scores) != len(pairs):
            raise NoRefusalError(f"The scorer returned {len(scores)} scores for {len(pairs)} rows.")
        if kind == "chatgpt-refusals":
            out[m] = chatgpt_refusals_report(rows, scores, threshold)
        else:
            out[m] = evaluate(rows, scores, threshold) | {"mode": m}
    return out


def xstest_report(path: str | Path, scorer: Scorer, threshold: float, *, mode: str = "both"
                  ) -> dict[str, Any]:  # fmt: skip
    """Figures of ``scorer`` on one XSTest completions CSV, per :data:`MODES` ``mode``."""
    return _run("xstest", Path(path), scorer, threshold, mode)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m norefusal.evaluation._independent {chatgpt-refusals,xstest} PATH [...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m norefusal.evaluation._independent",
        description="A scanner's figures on a reserved independent check, read from PATH.",
    )
    parser.add_argument("check", choices=("chatgpt-refusals", "xstest"))
    parser.add_argument("path", type=Path, help="all_hand_labeled.json, or an XSTest CSV")
    parser.add_argument("--model", default="default", help="preset, Hugging Face id or directory")
    parser.add_argument("--backend", choices=("onnx", "transformers", "keyword"), default=None)
    parser.add_argument("--threshold", type=float, default=None, help="default: the model's own")
    parser.add_argument("--mode", choices=MODES, default="both")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    from .._scanner import NoRefusalScanner

    try:
        scanner = NoRefusalScanner(threshold=args.threshold, model=args.model,
                                   backend=args.backend)  # fmt: skip
        report = _run(args.check, args.path, scanner_scorer(scanner), scanner.threshold,
                      args.mode)  # fmt: skip
    except (NoRefusalError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report["scanner"] = f"{scanner.model_name} ({scanner.backend_name})"
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['scanner']} on {args.check}: {args.path}")
    for m in ("with-prompt", "response-only"):
        if m in report:
            print(f"\n[{m}]")
            r = report[m]
            print(_chatgpt_summary(r) if args.check == "chatgpt-refusals" else summary(r))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
