"""``norefusal eval``: metrics on a toy scorer, bad input named by line, nothing half-written."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from norefusal.evaluation._eval import (
    EvalInputError,
    binary_metrics,
    expected_calibration_error,
    main,
    read_labelled,
    run_eval,
)

ROWS = [
    {"id": "1", "response": "I can't help.", "label": "refusal", "source": "a", "model": "m1"},
    {"id": "2", "response": "Sorry, no.", "label": "refusal", "source": "a", "model": "m2"},
    {"id": "3", "response": "Paris.", "label": "compliance", "source": "b", "model": "m1"},
    {"id": "4", "response": "It is 42.", "label": "compliance", "source": "b", "model": "m2"},
    {"id": "5", "response": "I won't, but try this.", "label": "partial_refusal", "source": "a",
     "model": "m1"},
]  # fmt: skip
SCORES = {"1": 0.9, "2": 0.3, "3": 0.1, "4": 0.7, "5": 0.8}


def _file(tmp_path: Path, rows: Sequence[object], name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def _scorer(pairs: Sequence[tuple[str, str]]) -> list[float]:
    by_text = {r["response"]: SCORES[r["id"]] for r in ROWS}
    return [by_text[response] for _, response in pairs]


def test_binary_metrics() -> None:
    labels = [r["label"] for r in ROWS]
    m = binary_metrics([SCORES[r["id"]] for r in ROWS], labels, 0.5)
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (1, 1, 1, 1)
    assert m["precision"] == m["recall"] == m["f1"] == m["accuracy"] == m["fpr"] == 0.5
    assert m["partial_refusals"] == 1
    assert m["partial_refusal_recall"] == 1.0
    only_compliance = binary_metrics([0.1, 0.9], ["compliance", "compliance"], 0.5)
    assert only_compliance["fpr"] == 0.5
    assert only_compliance["recall"] is None


def test_ece_of_perfectly_calibrated_bins_is_zero() -> None:
    ece, table = expected_calibration_error([0.25] * 4 + [0.75] * 4, [1, 0, 0, 0, 1, 1, 1, 0])
    assert ece == pytest.approx(0.0)
    assert [b["count"] for b in table] == [4, 4]


def test_run_eval_writes_report_and_plots(tmp_path: Path) -> None:
    report = run_eval(_file(tmp_path, ROWS), _scorer, 0.5, tmp_path / "out", title="toy")
    assert report["overall"]["f1"] == 0.5
    assert set(report["by_source"]) == {"a", "b"}
    assert set(report["by_model"]) == {"m1", "m2"}
    assert report["by_source"]["b"]["fpr"] == 0.5
    assert len(report["sweep"]) == 19
    assert {e["id"] for e in report["errors"]} == {"2", "4"}
    written = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"report.json", "scores.jsonl"} <= written
    if "plots" not in report:  # matplotlib installed
        assert {"pr_curve.png", "calibration.png"} <= written
    assert json.loads((tmp_path / "out" / "report.json").read_text())["overall"]["tp"] == 1


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"prompt": "p", "label": "refusal"}', "line 3: no 'response' key"),
        ('{"response": "x", "label": "maybe"}', "line 3: label must be one of"),
        ('{"response": "x", "label": "refusal"', "line 3: invalid JSON"),
        ('["response", "label"]', "line 3: a row must be a JSON object"),
    ],
)
def test_bad_input_names_the_line_and_writes_nothing(
    tmp_path: Path, bad: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _file(tmp_path, [ROWS[0], ROWS[1], bad, ROWS[2]])
    with pytest.raises(EvalInputError, match=message):
        read_labelled(path)
    out = tmp_path / "out"
    assert main([str(path), "--model", "keyword", "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_cli_runs_a_keyword_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, ROWS)
    assert main([str(path), "--model", "norefusal-light", "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "F1" in text
    assert "sweep" in text
    assert (tmp_path / "o" / "report.json").exists()
