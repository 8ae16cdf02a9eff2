"""Accuracy gates of the embedded default model, at its shipped threshold (issue 3).

The data gates read ``../shared/data`` (beside the project root) and skip with a message when
it is absent; the hard-case gate needs only the shipped model. The figures are in
``scanner/models/default/MODEL_CARD.md``; these tests fail when a new model regresses below
the bar: held-out XSTest F1 >= 0.95, AlpacaEval false-positive rate <= 1%, hard cases >= 90%.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hard_cases import HARD_CASES
from norefusal import NoRefusalScanner
from norefusal.evaluation import binary_metrics, expected_calibration_error
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
