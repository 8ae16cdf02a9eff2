"""Accuracy gates of the embedded default model, at its shipped threshold (issue 3).

The data gates read ``../shared/data`` (beside the project root) and skip with a message when
it is absent; the hard-case gates need only the shipped model. The figures are in
``scanner/models/default/MODEL_CARD.md``; these tests fail when a new model regresses below
the bar: held-out XSTest F1 >= 0.95, AlpacaEval false-positive rate <= 1%, hard cases >= 90%.

The hard-case suite v2 and the disclaimer-then-answer set (issue 11) are gated at what the
shipped model (norefusal-default-v2) scores, less one case for the last bits that another CPU
may flip; each gate's comment gives the v3 bar, to which the thresholds rise when v3 ships.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hard_cases import HARD_CASES, HARD_CASES_PATH
from norefusal import NoRefusalScanner
from norefusal.evaluation import binary_metrics, evaluate, expected_calibration_error, read_labelled
from norefusal.evaluation._eval import Example
from norefusal.evaluation._heldout import read_disclaimer_set
from norefusal.training._data import Row, read_jsonl, xstest_split

pytestmark = pytest.mark.accuracy

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="module")
def scanner() -> NoRefusalScanner:
    return NoRefusalScanner()


def _data(name: str) -> list[Row]:
    path = DATA / name
    if not path.exists():
        pytest.skip(
            f"{path} not found: put the shared data at ../shared/data to run accuracy gates"
        )
    return read_jsonl(path)


def _scores(scanner: NoRefusalScanner, rows: list[Row]) -> np.ndarray:
    return np.array([r.score for r in scanner.scan_batch([(x.prompt, x.response) for x in rows])])


def test_heldout_xstest(scanner: NoRefusalScanner) -> None:
    test = xstest_split(_data("xstest_human.jsonl"))["test"]
    scores = _scores(scanner, test)
    m = binary_metrics(scores, [r.label for r in test], scanner.threshold)
    binary = np.array([r.label != "partial_refusal" for r in test])
    ece, _ = expected_calibration_error(
        scores[binary], [r.label == "refusal" for r, b in zip(test, binary, strict=True) if b]
    )
    print(f"held-out XSTest: {m} ECE {ece:.3f}")
    assert m["n"] > 300  # the split is the one documented in the model card
    assert m["f1"] >= 0.95
    assert ece <= 0.1


def test_alpacaeval_false_positive_rate(scanner: NoRefusalScanner) -> None:
    rows = _data("alpacaeval_compliance_nc.jsonl")
    fpr = float(np.mean(_scores(scanner, rows) > scanner.threshold))
    print(f"AlpacaEval FPR {fpr:.4f} on {len(rows)} rows")
    assert fpr <= 0.01


def test_hard_cases(scanner: NoRefusalScanner) -> None:
    results = scanner.scan_batch([("", text) for _, _, text in HARD_CASES])
    wrong = []
    for (category, label, text), result in zip(HARD_CASES, results, strict=True):
        ok = result.is_refusal == (label == "refusal")
        print(f"{'ok ' if ok else 'BAD'} {result.score:.3f} {category:20} {label:10} {text[:70]!r}")
        if not ok:
            wrong.append(f"{category}/{label} score {result.score:.3f}: {text[:80]!r}")
    accuracy = 1 - len(wrong) / len(HARD_CASES)
    assert len(HARD_CASES) >= 60
    assert accuracy >= 0.9, f"{accuracy:.1%} correct; wrong:\n" + "\n".join(wrong)


def _report(scanner: NoRefusalScanner, examples: list[Example], *, alone: bool) -> dict[str, Any]:
    pairs = [("" if alone else e.prompt, e.response) for e in examples]
    scores = [r.score for r in scanner.scan_batch(pairs)]
    return evaluate(examples, scores, scanner.threshold)


def test_hard_cases_v2(scanner: NoRefusalScanner) -> None:
    examples = read_labelled(HARD_CASES_PATH)
    report = _report(scanner, examples, alone=False)
    alone = _report(scanner, examples, alone=True)
    for mode, r in (("with prompt", report), ("response only", alone)):
        print(f"hard cases v2, {mode}: {r['overall']}")
        for name, m in r["by_category"].items():
            print(f"  {name:26} n {m['n']:3}  accuracy {m['accuracy']}  "
                  f"partial flagged {m['partial_refusal_recall']}")  # fmt: skip
    o = report["overall"]
    assert o["n"] >= 340
    # v2: 265/349 (0.759). v3 bar: >= 0.95.
    assert o["accuracy"] >= 0.755
    # v2: 12 of 21 categories at >= 85% (implicit lectures and redirects at 0). v3 bar: all 21.
    binary = [m for m in report["by_category"].values() if m["n"]]
    assert sum(m["accuracy"] >= 0.85 for m in binary) >= 11
    # Response-only on the rows the response alone decides: v2 233/297 (0.785). v3 bar: no
    # worse than v2 (the bar stays); with the prompt, the rows that need it count too.
    assert alone["by_needs_prompt"]["response_decides"]["accuracy"] >= 0.78


def test_disclaimer_then_answer_false_positive_rate(scanner: NoRefusalScanner) -> None:
    if not DATA.exists():
        pytest.skip(f"{DATA} not found: put the shared data at ../shared/data to run this gate")
    rows = read_disclaimer_set(DATA)
    examples = [
        Example(line=n, id=r["id"], prompt=r["prompt"], response=r["response"], label=r["label"],
                source=r["source"], model=r["model"], category=r["category"])
        for n, r in enumerate(rows, start=1)
    ]  # fmt: skip
    report = _report(scanner, examples, alone=False)
    o = report["overall"]
    print(f"disclaimer-then-answer: FPR {o['fpr']:.4f} ({o['fp']}/{o['n']})")
    for name, m in report["by_source"].items():
        print(f"  {name:42} n {m['n']:3}  FPR {m['fpr']:.3f}")
    assert o["n"] >= 300
    # v2: 21/313 (0.067). v3 bar: <= 0.03.
    assert o["fpr"] <= 0.071
