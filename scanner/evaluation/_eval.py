"""``norefusal eval``: accuracy figures of any preset or backend on a labelled JSON Lines file.

Rows carry ``response`` and ``label`` (``refusal``, ``partial_refusal`` or ``compliance``), and
optionally ``prompt``, ``id``, ``source``, ``model``, ``category``, ``subcategory``, ``lang``
and ``needs_prompt`` (true when only the prompt decides the label). Binary figures (precision,
recall, F1, accuracy, false-positive rate, ECE) use refusal vs compliance only; partial
refusals are reported apart as the share flagged. Breakdowns by source and by model, and by
category, subcategory, language and ``needs_prompt`` where rows carry them, a threshold sweep,
and PR-curve and calibration plots (PNG, with matplotlib) come with them. A file can be
scored with its prompts, on the responses alone, or both ways (``--mode``), so that a
conversation-aware model's two uses are measured on the same rows.

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

from .._cli_common import add_scanner_options, progress, scanner_from_args
from .._errors import NoRefusalError
from .._jsonl import iter_objects

__all__ = [
    "MODES",
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
#: How prompts reach the scorer: as given, replaced by "", or both ways (two reports).
MODES = ("with-prompt", "response-only", "both")
#: Row fields that get a breakdown: always the first two, the others when any row has them.
_GROUPS = ("source", "model", "category", "subcategory", "lang")
_OPTIONAL_TEXT = ("category", "subcategory", "lang")
#: The plots ``write_report`` draws (with matplotlib).
_PLOTS = ("pr_curve.png", "calibration.png")
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
    category: str | None = None
    subcategory: str | None = None
    lang: str | None = None
    needs_prompt: bool | None = None


def read_labelled(path: str | Path) -> list[Example]:
    """Read and check every row of ``path``; the first bad row raises, naming its line."""
    path = Path(path)
    examples: list[Example] = []
    try:
        rows = list(iter_objects(path))
    except ValueError as exc:  # unreadable, empty, invalid JSON or not an object: named
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
        optional: dict[str, Any] = {}
        for key in _OPTIONAL_TEXT:
            value = row.get(key)
            if value is not None and not isinstance(value, str):
                raise EvalInputError(f"{path}, line {n}: '{key}' is not a string.")
            optional[key] = value or None
        needs_prompt = row.get("needs_prompt")
        if needs_prompt is not None and not isinstance(needs_prompt, bool):
            raise EvalInputError(f"{path}, line {n}: 'needs_prompt' must be true or false.")
        examples.append(
            Example(
                line=n,
                id=str(row.get("id", n)),
                prompt=prompt,
                response=response,
                label=label,
                source=str(row.get("source") or "unknown"),
                model=str(row.get("model") or "unknown"),
                needs_prompt=needs_prompt,
                **optional,
            )
        )
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
    for key in _GROUPS:
        values = [getattr(e, key) for e in examples]
        if key in _OPTIONAL_TEXT and all(v is None for v in values):
            continue
        report[f"by_{key}"] = _breakdown(s, labels, values, threshold)
    if any(e.needs_prompt is not None for e in examples):
        # Rows only the prompt decides, apart: a response-only scorer cannot be right on them.
        report["by_needs_prompt"] = _breakdown(
            s, labels, ["needs_prompt" if e.needs_prompt else "response_decides"
                        for e in examples], threshold,
        )  # fmt: skip
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
        | {k: getattr(e, k) for k in ("category", "needs_prompt") if getattr(e, k) is not None}
        for i, e in enumerate(examples)
        if e.label != "partial_refusal" and bool(pred[i]) != (e.label == "refusal")
    ][:500]  # fmt: skip
    return report


def _breakdown(
    scores: np.ndarray, labels: Sequence[str], groups: Sequence[str | None], threshold: float
) -> dict[str, dict[str, Any]]:
    """:func:`binary_metrics` per group; rows without a value fall in ``"unknown"``."""
    index: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        index.setdefault(g or "unknown", []).append(i)
    return {
        g: binary_metrics(scores[idx], [labels[i] for i in idx], threshold)
        for g, idx in sorted(index.items())
    }


def _plots(
    report: dict[str, Any], scores: np.ndarray, y: np.ndarray, out: Path, title: str
) -> dict[str, str]:
    """Draw the PNG plots into ``out``; returns the plots not drawn, each with the reason."""
    try:
        import matplotlib
    except ImportError:
        why = 'matplotlib is not installed (`pip install matplotlib`, or the "train" extra)'
        return dict.fromkeys(_PLOTS, why)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    skipped = {}
    if not 0 < y.sum() < len(y):
        only = "refusal" if y.sum() else "compliance"
        skipped["pr_curve.png"] = f"a PR curve needs both classes, and every row is {only}"
    else:
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
    return skipped


def write_report(
    report: dict[str, Any],
    examples: Sequence[Example],
    scores: Sequence[float],
    out_dir: str | Path,
    *,
    title: str = "",
    response_only_scores: Sequence[float] | None = None,
) -> list[Path]:
    """Write ``report.json``, ``scores.jsonl`` and the PNG plots into ``out_dir``.

    Everything is rendered in a temporary directory first; files are moved into ``out_dir``
    only once all of them exist. A plot that cannot be drawn (no matplotlib; a PR curve of a
    file with one class) is skipped, and the report's ``skipped`` maps its file name to why.
    With ``response_only_scores`` (``--mode both``), each ``scores.jsonl`` row also carries
    ``score_response_only``; the plots show ``scores``. Returns the paths written, in order.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    s = np.asarray(scores, dtype=np.float64)
    binary = np.array([e.label != "partial_refusal" for e in examples])
    y = np.array([e.label == "refusal" for e in examples], dtype=np.float64)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=".eval-") as tmp:
        staging = Path(tmp)
        report["skipped"] = _plots(report, s[binary], y[binary], staging, title)
        alone = None if response_only_scores is None else list(response_only_scores)
        with (staging / "scores.jsonl").open("w", encoding="utf-8") as fh:
            for i, (e, score) in enumerate(zip(examples, s, strict=True)):
                row: dict[str, Any] = {"line": e.line, "id": e.id, "label": e.label,
                                       "score": round(float(score), 6)}  # fmt: skip
                if e.category is not None:
                    row["category"] = e.category
                if alone is not None:
                    row["score_response_only"] = round(float(alone[i]), 6)
                fh.write(json.dumps(row) + "\n")
        (staging / "report.json").write_text(json.dumps(report, indent=2) + "\n")
        written = []
        for item in sorted(staging.iterdir()):
            target = out_dir / item.name
            os.replace(item, target)
            written.append(target)
    return written


def _fmt(x: float | None) -> str:
    return "  n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"


def _table(name: str, groups: dict[str, dict[str, Any]]) -> list[str]:
    lines = [f"{name}:"]
    width = max(map(len, groups), default=0)  # whole names: a cut one can name another group
    for g, m in groups.items():
        lines.append(
            f"  {g:{width}} n {m['n']:5}  acc {_fmt(m['accuracy'])}  P {_fmt(m['precision'])}  "
            f"R {_fmt(m['recall'])}  F1 {_fmt(m['f1'])}  FPR {_fmt(m['fpr'])}  "
            f"partial {m['partial_refusals']:3} flagged {_fmt(m['partial_refusal_recall'])}"
        )
    return lines


def _headline(report: dict[str, Any]) -> list[str]:
    o = report["overall"]
    return [
        f"threshold {report['threshold']:.2f}  rows {report['rows']}  binary {o['n']} "
        f"(refusals {o['refusals']})  partial {o['partial_refusals']}",
        f"precision {_fmt(o['precision'])}  recall {_fmt(o['recall'])}  F1 {_fmt(o['f1'])}  "
        f"accuracy {_fmt(o['accuracy'])}  FPR {_fmt(o['fpr'])}  "
        f"partial recall {_fmt(o['partial_refusal_recall'])}  ECE {report['ece']:.3f}",
    ]


def _breakdowns(report: dict[str, Any]) -> list[str]:
    lines = []
    for key in (*(f"by_{g}" for g in _GROUPS), "by_needs_prompt"):
        # source and model always exist; a single group repeats the headline
        if len(report.get(key, ())) >= (1 if key in ("by_category", "by_needs_prompt") else 2):
            lines += _table(key.replace("_", " "), report[key])
    return lines


def summary(report: dict[str, Any]) -> str:
    """A plain-text table of the headline figures and the breakdowns.

    With a response-only report beside it (``--mode both``), its headline and breakdowns
    follow under ``response only``.
    """
    lines = [f"mode: {report.get('mode', 'with-prompt')}", *_headline(report), *_breakdowns(report)]
    lines.append("sweep:  threshold  precision  recall  F1     FPR")
    for m in report["sweep"]:
        lines.append(
            f"        {m['threshold']:.2f}       {_fmt(m['precision'])}      {_fmt(m['recall'])}   "
            f"{_fmt(m['f1'])}  {_fmt(m['fpr'])}"
        )
    alone = report.get("response_only")
    if alone is not None:
        lines += ["", "response only (prompts withheld):", *_headline(alone), *_breakdowns(alone)]
    return "\n".join(lines)


def scanner_scorer(
    scanner: Any, *, on_progress: Callable[[int], object] | None = None, chunk: int = 256
) -> Scorer:
    """A :data:`Scorer` from a ``NoRefusalScanner`` (its calibrated ``score``).

    Pairs go to ``scan_batch`` ``chunk`` at a time, and ``on_progress(n)`` hears of each chunk
    done (the command's progress bar). The scores are those of one ``scan_batch`` over the file:
    the embedded ONNX model scores one text per forward pass, so no text's score depends on
    the texts around it.
    """

    def score(pairs: Sequence[tuple[str, str]]) -> list[float]:
        scores: list[float] = []
        for start in range(0, len(pairs), chunk):
            part = pairs[start : start + chunk]
            scores += [r.score for r in scanner.scan_batch(part)]
            if on_progress is not None:
                on_progress(len(part))
        return scores

    return score


def _score(scorer: Scorer, pairs: Sequence[tuple[str, str]]) -> list[float]:
    scores = list(scorer(pairs))
    if len(scores) != len(pairs):
        raise NoRefusalError(f"The scorer returned {len(scores)} scores for {len(pairs)} rows.")
    return scores


def run_eval(
    path: str | Path, scorer: Scorer, threshold: float, out_dir: str | Path | None = None,
    *, title: str = "", mode: str = "with-prompt",
) -> dict[str, Any]:  # fmt: skip
    """Read, score, measure and (with ``out_dir``) write; returns the report.

    ``mode`` is one of :data:`MODES`. ``"with-prompt"`` gives the scorer each row's prompt
    (``""`` where a row has none), ``"response-only"`` gives it ``""`` for every prompt, and
    ``"both"`` scores both ways: the report is the with-prompt one, with the response-only
    report under ``"response_only"`` (same keys, no plots of its own). With ``out_dir``, the
    returned report's ``written`` lists the files written and its ``skipped`` maps each plot
    not drawn to the reason.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}.")
    examples = read_labelled(path)
    with_prompt = [(e.prompt, e.response) for e in examples]
    alone = [("", e.response) for e in examples]
    scores = _score(scorer, alone if mode == "response-only" else with_prompt)
    report = evaluate(examples, scores, threshold)
    report["mode"] = "response-only" if mode == "response-only" else "with-prompt"
    report["file"] = str(path)
    report["scanner"] = title
    alone_scores = None
    if mode == "both":
        alone_scores = _score(scorer, alone)
        report["response_only"] = evaluate(examples, alone_scores, threshold)
        report["response_only"]["mode"] = "response-only"
    if out_dir is not None:
        written = write_report(report, examples, scores, out_dir, title=title or Path(path).name,
                               response_only_scores=alone_scores)  # fmt: skip
        report["written"] = [str(p) for p in written]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """``norefusal eval FILE.jsonl [--model M] [--mode M] [--out DIR] ...``; errors raise."""
    parser = argparse.ArgumentParser(
        prog="norefusal eval",
        description="Accuracy figures of a scanner on a labelled JSON Lines file: precision, "
        "recall, F1, FPR, partial refusals, breakdowns by source, model and category, a "
        "threshold sweep.",
    )
    parser.add_argument(
        "file",
        type=Path,
        metavar="FILE",
        help="JSON Lines rows with response and label (refusal, partial_refusal, compliance)",
    )
    parser.add_argument("--mode", choices=MODES, default="with-prompt",
                        help="score with each row's prompt (default), on the response alone, "
                        "or both ways")  # fmt: skip
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="write report.json, scores.jsonl and the PNG plots (with matplotlib) here",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_scanner_options(parser)
    args = parser.parse_args(argv)
    if args.file.name in _SILVER:
        print(f"norefusal eval: warning: {args.file.name} has silver (keyword-judged) labels; "
              "do not report its figures.", file=sys.stderr)  # fmt: skip
    rows = len(read_labelled(args.file))  # fail on bad input before loading any model
    scanner = scanner_from_args(args)
    title = f"{scanner.model_name} ({scanner.backend_name})"
    with progress(rows * (2 if args.mode == "both" else 1), desc="scoring") as update:
        scorer = scanner_scorer(scanner, on_progress=update)
        report = run_eval(
            args.file, scorer, scanner.threshold, args.out, title=title, mode=args.mode
        )
    print(json.dumps(report, indent=2) if args.json else summary(report))
    if args.out is not None:
        print(f"norefusal eval: wrote {', '.join(report['written'])}", file=sys.stderr)
        reasons: dict[str, list[str]] = {}
        for name, why in report["skipped"].items():
            reasons.setdefault(why, []).append(name)
        for why, names in reasons.items():
            print(f"norefusal eval: skipped {' and '.join(names)}: {why}.", file=sys.stderr)
    return 0
