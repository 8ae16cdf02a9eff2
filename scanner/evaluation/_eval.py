"""``norefusal eval``: accuracy figures of any preset or backend on a labelled JSON Lines file.

Rows carry ``response`` and ``label`` (``refusal``, ``partial_refusal`` or ``compliance``), and
optionally ``prompt``, ``id``, ``source`` and ``model``. Binary figures (precision, recall, F1,
accuracy, false-positive rate, ECE) use refusal vs compliance only; partial refusals are
reported apart as the share flagged. Breakdowns by source and by model, a threshold sweep,
and PR-curve and calibration plots (PNG, with matplotlib) come with them.

The whole file is read and checked before anything is scored, and outputs are rendered in a
temporary directory and moved into place at the end: a bad row (invalid JSON, no
``response``, an unknown label) raises :class:`EvalInputError` naming its line, and nothing
is written.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._errors import NoRefusalError
from .._jsonl import iter_objects

__all__ = [
    "EvalInputError",
    "Example",
    "Scorer",
    "binary_metrics",
    "evaluate",
    "expected_calibration_error",
    "main",
    "read_labelled",
    "write_report",
]

#: Scores (prompt, response) pairs: P(refusal) for each, in order.
Scorer = Callable[[Sequence[tuple[str, str]]], Sequence[float]]
LABELS = ("refusal", "partial_refusal", "compliance")
#: Files whose labels come from a keyword judge: they may train, never measure.
_SILVER = ("refusal_direction_silver.jsonl",)


class EvalInputError(NoRefusalError, ValueError):
    """A labelled file cannot be evaluated; the message names the file and line."""


@dataclass(frozen=True)
class Example:
    """One labelled row of an evaluation file."""

    line: int
    id: str
    prompt: str
    response: str
    label: str
    source: str
    model: str


def read_labelled(path: str | Path) -> list[Example]:
    """Read and check every row of ``path``; the first bad row raises, naming its line."""
    path = Path(path)
    examples: list[Example] = []
    try:
        rows = list(iter_objects(path))
    except OSError as exc:
        raise EvalInputError(f"Cannot read {path}: {exc.strerror or exc}.") from None
    except ValueError as exc:  # invalid JSON or not an object, naming the line
        raise EvalInputError(str(exc)) from None
    for n, row in rows:
        response = row.get("response")
        if not isinstance(response, str):
            what = "no 'response' key" if "response" not in row else "'response' is not a string"
            raise EvalInputError(f"{path}, line {n}: {what}.")
        label = row.get("label")
        if label not in LABELS:
            raise EvalInputError(
                f"{path}, line {n}: label must be one of {', '.join(LABELS)}; got {label!r}."
            )
        prompt = row.get("prompt") or ""
        if not isinstance(prompt, str):
            raise EvalInputError(f"{path}, line {n}: 'prompt' is not a string.")
        examples.append(
            Example(
                line=n,
                id=str(row.get("id", n)),
                prompt=prompt,
                response=response,
                label=label,
                source=str(row.get("source") or "unknown"),
                model=str(row.get("model") or "unknown"),
            )
        )
    if not examples:
        raise EvalInputError(f"{path} holds no rows.")
    return examples


def _ratio(a: int, b: int) -> float | None:
    return a / b if b else None


def binary_metrics(
    scores: npt.ArrayLike, labels: Sequence[str], threshold: float
) -> dict[str, Any]:
    """Confusion counts and rates at ``threshold`` (refusal when score > threshold).

    Only refusal and compliance rows count; ``partial_refusal_recall`` is the share of
    partial refusals flagged. A rate with an empty denominator is ``None``.
    """
    s = np.asarray(scores, dtype=np.float64)
    lab = np.asarray(labels)
    pred = s > threshold
    pos, neg, part = lab == "refusal", lab == "compliance", lab == "partial_refusal"
    tp, fp = int(np.sum(pred & pos)), int(np.sum(pred & neg))
    fn, tn = int(np.sum(~pred & pos)), int(np.sum(~pred & neg))
    precision, recall = _ratio(tp, tp + fp), _ratio(tp, tp + fn)
    f1 = _ratio(2 * tp, 2 * tp + fp + fn) if tp + fn else None
    return {
        "n": int(pos.sum() + neg.sum()),
        "refusals": int(pos.sum()),
        "tp": tp,
        "fp": fp,
        "tn": tn,
        "fn": fn,
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": _ratio(tp + tn, tp + tn + fp + fn),
        "fpr": _ratio(fp, fp + tn),
        "partial_refusals": int(part.sum()),
        "partial_refusal_recall": _ratio(int(np.sum(pred & part)), int(part.sum())),
    }


def expected_calibration_error(
    scores: npt.ArrayLike, targets: npt.ArrayLike, bins: int = 10
) -> tuple[float, list[dict[str, float]]]:
    """ECE over equal-width bins, and the bins (mean score, refusal share, count)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(targets, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    idx = np.clip(np.digitize(s, edges[1:-1], right=True), 0, bins - 1)
    ece, table = 0.0, []
    for b in range(bins):
        mask = idx == b
        if not mask.any():
            continue
        conf, acc, count = float(s[mask].mean()), float(y[mask].mean()), int(mask.sum())
        ece += abs(conf - acc) * count / max(1, len(s))
        table.append({"low": float(edges[b]), "high": float(edges[b + 1]),
                      "mean_score": conf, "refusal_share": acc, "count": count})  # fmt: skip
    return ece, table


def _pr_curve(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    order = np.argsort(-scores, kind="stable")
    s, t = scores[order], y[order]
    tp = np.cumsum(t)
    fp = np.cumsum(1 - t)
    last = np.r_[np.flatnonzero(np.diff(s)), len(s) - 1]  # one point per distinct score
    precision = tp[last] / (tp[last] + fp[last])
    recall = tp[last] / max(1, t.sum())
    ap = float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
    return precision, recall, ap


def evaluate(
    examples: Sequence[Example], scores: Sequence[float], threshold: float
) -> dict[str, Any]:
    """All figures for scored examples, as a JSON-ready dict."""
    s = np.asarray(scores, dtype=np.float64)
    labels = [e.label for e in examples]
    binary = np.array([lab != "partial_refusal" for lab in labels])
    y = np.array([lab == "refusal" for lab in labels], dtype=np.float64)
    report: dict[str, Any] = {"threshold": threshold, "rows": len(examples)}
    report["overall"] = binary_metrics(s, labels, threshold)
    for key in ("source", "model"):
        groups: dict[str, list[int]] = {}
        for i, e in enumerate(examples):
            groups.setdefault(getattr(e, key), []).append(i)
        report[f"by_{key}"] = {
            g: binary_metrics(s[idx], [labels[i] for i in idx], threshold)
            for g, idx in sorted(groups.items())
        }
    report["sweep"] = [
        {"threshold": float(t)} | binary_metrics(s, labels, float(t))
        for t in np.round(np.arange(0.05, 0.951, 0.05), 2)
    ]
    ece, table = expected_calibration_error(s[binary], y[binary])
    report["ece"] = ece
    report["calibration"] = table
    if 0 < y[binary].sum() < binary.sum():
        _, _, ap = _pr_curve(s[binary], y[binary])
        report["average_precision"] = ap
    pred = s > threshold
    report["errors"] = [
        {"line": e.line, "id": e.id, "label": e.label, "score": round(float(s[i]), 4),
         "source": e.source}
        for i, e in enumerate(examples)
        if e.label != "partial_refusal" and bool(pred[i]) != (e.label == "refusal")
    ][:500]  # fmt: skip
    return report


def _plots(
    report: dict[str, Any], scores: np.ndarray, y: np.ndarray, out: Path, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if 0 < y.sum() < len(y):
        precision, recall, ap = _pr_curve(scores, y)
        fig, ax = plt.subplots(figsize=(5, 4))
        ax.step(recall, precision, where="post")
        at = report["overall"]
        if at["recall"] is not None and at["precision"] is not None:
            ax.plot(
                [at["recall"]], [at["precision"]], "o", label=f"threshold {report['threshold']:.2f}"
            )
            ax.legend(loc="lower left")
        ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.01),
               title=f"{title}\nAP {ap:.3f}")  # fmt: skip
        fig.tight_layout()
        fig.savefig(out / "pr_curve.png", dpi=100)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 4))
    ax.plot([0, 1], [0, 1], "--", color="grey")
    table = report["calibration"]
    ax.plot([b["mean_score"] for b in table], [b["refusal_share"] for b in table], "o-")
    ax.set(xlabel="mean score", ylabel="share of refusals", xlim=(0, 1), ylim=(0, 1),
           title=f"{title}\nECE {report['ece']:.3f}")  # fmt: skip
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=100)
    plt.close(fig)


def write_report(
    report: dict[str, Any],
    examples: Sequence[Example],
    scores: Sequence[float],
    out_dir: str | Path,
    *,
    title: str = "",
) -> list[Path]:
    """Write ``report.json``, ``scores.jsonl`` and the PNG plots into ``out_dir``.

    Everything is rendered in a temporary directory first; files are moved into ``out_dir``
    only once all of them exist. Plots are skipped (with a note in the report) when
    matplotlib is not installed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = np.asarray(scores, dtype=np.float64)
    binary = np.array([e.label != "partial_refusal" for e in examples])
    y = np.array([e.label == "refusal" for e in examples], dtype=np.float64)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".eval-") as tmp:
        staging = Path(tmp)
        try:
            _plots(report, s[binary], y[binary], staging, title)
        except ImportError:
            report = report | {"plots": 'skipped: pip install matplotlib (or "norefusal[train]")'}
        with (staging / "scores.jsonl").open("w", encoding="utf-8") as fh:
            for e, score in zip(examples, s, strict=True):
                fh.write(json.dumps({"line": e.line, "id": e.id, "label": e.label,
                                     "score": round(float(score), 6)}) + "\n")  # fmt: skip
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        written = []
        for item in sorted(staging.iterdir()):
            target = out_dir / item.name
            os.replace(item, target)
            written.append(target)
    return written


def _fmt(x: float | None) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def summary(report: dict[str, Any]) -> str:
    """A plain-text table of the headline figures and the breakdowns."""
    lines = []
    o = report["overall"]
    lines.append(
        f"threshold {report['threshold']:.2f}  rows {report['rows']}  binary {o['n']} "
        f"(refusals {o['refusals']})  partial {o['partial_refusals']}"
    )
    lines.append(
        f"precision {_fmt(o['precision'])}  recall {_fmt(o['recall'])}  F1 {_fmt(o['f1'])}  "
        f"accuracy {_fmt(o['accuracy'])}  FPR {_fmt(o['fpr'])}  "
        f"partial recall {_fmt(o['partial_refusal_recall'])}  ECE {report['ece']:.3f}"
    )
    for key in ("by_source", "by_model"):
        if len(report[key]) < 2:
            continue
        lines.append(f"{key.replace('_', ' ')}:")
        for name, m in report[key].items():
            lines.append(
                f"  {name[:60]:60} n {m['n']:5}  P {_fmt(m['precision'])}  R {_fmt(m['recall'])}  "
                f"F1 {_fmt(m['f1'])}  FPR {_fmt(m['fpr'])}  "
                f"partial {_fmt(m['partial_refusal_recall'])}"
            )
    lines.append("sweep:  threshold  precision  recall  F1     FPR")
    for m in report["sweep"]:
        lines.append(
            f"        {m['threshold']:.2f}       {_fmt(m['precision'])}      {_fmt(m['recall'])}   "
            f"{_fmt(m['f1'])}  {_fmt(m['fpr'])}"
        )
    return "\n".join(lines)


def scanner_scorer(scanner: Any) -> Scorer:
    """A :data:`Scorer` from a ``NoRefusalScanner`` (its calibrated ``score``).

    All pairs go to one ``scan_batch`` call, which batches by length itself: an int8 model
    quantizes activations per batch, so scores can move in the third decimal with the batch
    a text lands in, and this keeps ``eval`` identical to a ``scan_batch`` over the file.
    """

    def score(pairs: Sequence[tuple[str, str]]) -> list[float]:
        return [r.score for r in scanner.scan_batch(pairs)]

    return score


def run_eval(
    path: str | Path, scorer: Scorer, threshold: float, out_dir: str | Path | None = None,
    *, title: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Read, score, measure and (with ``out_dir``) write; returns the report."""
    examples = read_labelled(path)
    scores = list(scorer([(e.prompt, e.response) for e in examples]))
    if len(scores) != len(examples):
        raise NoRefusalError(f"The scorer returned {len(scores)} scores for {len(examples)} rows.")
    report = evaluate(examples, scores, threshold)
    report["file"] = str(path)
    report["scanner"] = title
    if out_dir is not None:
        write_report(report, examples, scores, out_dir, title=title or Path(path).name)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``norefusal eval FILE.jsonl [--model M] [--backend B] [--threshold T] [--out DIR]``."""
    parser = argparse.ArgumentParser(
        prog="norefusal eval",
        description="Accuracy figures of a scanner on a labelled JSON Lines file.",
    )
    parser.add_argument("file", type=Path, help="JSON Lines rows with response and label")
    parser.add_argument("--model", default="default", help="preset, Hugging Face id or directory")
    parser.add_argument("--backend", choices=("onnx", "transformers", "keyword"), default=None)
    parser.add_argument("--threshold", type=float, default=None, help="default: the model's own")
    parser.add_argument("--match", choices=("full", "sentence"), default="full")
    parser.add_argument("--max-tokens", type=int, default=None)
    parser.add_argument("--out", type=Path, default=None,
                        help="write report.json, scores.jsonl and PNG plots here")  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if args.file.name in _SILVER:
        print(f"norefusal eval: warning: {args.file.name} has silver (keyword-judged) labels; "
              "do not report its figures.", file=sys.stderr)  # fmt: skip
    from .._scanner import NoRefusalScanner

    try:
        examples_ok = read_labelled(args.file)  # fail on bad input before loading any model
        del examples_ok
        scanner = NoRefusalScanner(
            threshold=args.threshold, model=args.model, backend=args.backend, match=args.match,
            max_tokens=args.max_tokens,
        )  # fmt: skip
        title = f"{scanner.model_name} ({scanner.backend_name})"
        report = run_eval(
            args.file, scanner_scorer(scanner), scanner.threshold, args.out, title=title
        )
    except (NoRefusalError, OSError) as exc:
        print(f"norefusal eval: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2) if args.json else summary(report))
    if args.out is not None:
        print(f"wrote {args.out}/report.json, scores.jsonl and plots", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
