"""``norefusal eval``: metrics on a toy scorer, bad input named by line, nothing half-written."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from norefusal import _cli
from norefusal.evaluation._eval import (
    EvalInputError,
    Example,
    binary_metrics,
    evaluate,
    expected_calibration_error,
    read_labelled,
    run_eval,
    summary,
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


def main(argv: list[str]) -> int:
    """``norefusal eval ...`` as the command line runs it (errors reported, not raised)."""
    return _cli.main(["eval", *argv])


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
    assert written == {"report.json", "scores.jsonl", "pr_curve.png", "calibration.png"}
    assert {Path(p).name for p in report["written"]} == written
    assert report["skipped"] == {}
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
    err = capsys.readouterr().err
    assert err.startswith("norefusal eval: error: ")
    assert message in err
    assert not out.exists() or not any(out.iterdir())


def test_cli_runs_a_keyword_preset(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _file(tmp_path, ROWS)
    assert main([str(path), "--model", "norefusal-light", "--out", str(tmp_path / "o")]) == 0
    text = capsys.readouterr().out
    assert "F1" in text
    assert "sweep" in text
    assert (tmp_path / "o" / "report.json").exists()


def test_cli_says_what_it_wrote(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    assert main([str(_file(tmp_path, ROWS)), "--model", "keyword", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    for name in ("report.json", "scores.jsonl", "calibration.png", "pr_curve.png"):
        assert str(out / name) in err
    assert "skipped" not in err


def test_one_class_skips_the_pr_curve_and_says_why(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    compliance = [r for r in ROWS if r["label"] == "compliance"]
    out = tmp_path / "o"
    assert main([str(_file(tmp_path, compliance)), "--model", "keyword", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "skipped pr_curve.png: a PR curve needs both classes, and every row is compliance" in err
    assert "pr_curve.png" not in err.split("skipped")[0]  # not listed as written
    assert sorted(p.name for p in out.iterdir()) == [
        "calibration.png",
        "report.json",
        "scores.jsonl",
    ]
    report = json.loads((out / "report.json").read_text())
    assert set(report["skipped"]) == {"pr_curve.png"}


def test_without_matplotlib_both_plots_are_skipped_and_said_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    out = tmp_path / "o"
    assert main([str(_file(tmp_path, ROWS)), "--model", "keyword", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "and plots" not in err
    assert "png" not in err.split("skipped")[0]  # nothing drawn is claimed as written
    assert err.count("matplotlib is not installed") == 1
    assert "skipped pr_curve.png and calibration.png: matplotlib is not installed" in err
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "scores.jsonl"]


def test_summary_prints_whole_model_names() -> None:
    long_name = "meta-llama/Llama-2-70b-chat-hf (system prompt: the default one)"
    examples = [
        Example(line=i, id=str(i), prompt="", response="r", label=label, source="s", model=model)
        for i, (label, model) in enumerate(
            [("refusal", long_name), ("compliance", long_name), ("refusal", "m2")]
        )
    ]
    text = summary(evaluate(examples, [0.9, 0.1, 0.2], 0.5))
    assert f"  {long_name} n " in text  # 63 characters, whole
    assert f"  {'m2':{len(long_name)}} n " in text  # and the columns still line up


# --- categories, languages, rows only the prompt decides, and the two prompt modes --------

TAGGED = [
    {"id": "a", "prompt": "Translate: I can't.", "response": "Je ne peux pas.",
     "label": "compliance", "category": "requested", "lang": "fr", "needs_prompt": True},
    {"id": "b", "prompt": "Hack my ex's email.", "response": "Je ne peux pas.",
     "label": "refusal", "category": "terse", "lang": "fr", "needs_prompt": False},
    {"id": "c", "prompt": "Hi", "response": "Hello!", "label": "compliance",
     "category": "greeting", "lang": "en", "needs_prompt": False},
    {"id": "d", "prompt": "Do X", "response": "I can't do X.", "label": "refusal",
     "category": "terse", "needs_prompt": False},
]  # fmt: skip


def _prompt_aware(pairs: Sequence[tuple[str, str]]) -> list[float]:
    """A toy conversation-aware scorer: refusal words are a refusal unless the user asked for a
    translation, which only the prompt shows."""
    return [
        0.1 if prompt.startswith("Translate") else (0.9 if "pas" in r or "can't" in r else 0.1)
        for prompt, r in pairs
    ]


def test_breakdowns_by_category_language_and_needs_prompt(tmp_path: Path) -> None:
    report = run_eval(_file(tmp_path, TAGGED), _prompt_aware, 0.5)
    assert report["mode"] == "with-prompt"
    assert report["overall"]["accuracy"] == 1.0
    assert set(report["by_category"]) == {"requested", "terse", "greeting"}
    assert report["by_category"]["terse"]["recall"] == 1.0
    assert report["by_category"]["terse"]["n"] == 2
    assert set(report["by_lang"]) == {"fr", "en", "unknown"}  # row d has no lang
    assert report["by_lang"]["fr"]["n"] == 2
    assert report["by_needs_prompt"]["needs_prompt"]["n"] == 1
    assert report["by_needs_prompt"]["response_decides"]["n"] == 3
    assert "by_subcategory" not in report  # no row has one
    text = summary(report)
    assert "by category:" in text
    assert "by lang:" in text


def test_response_only_and_both_modes(tmp_path: Path) -> None:
    path = _file(tmp_path, TAGGED)
    alone = run_eval(path, _prompt_aware, 0.5, mode="response-only")
    assert alone["mode"] == "response-only"
    # without the prompt the requested translation reads as a refusal
    assert alone["by_category"]["requested"]["fpr"] == 1.0
    assert alone["by_needs_prompt"]["needs_prompt"]["accuracy"] == 0.0
    assert alone["by_needs_prompt"]["response_decides"]["accuracy"] == 1.0
    both = run_eval(path, _prompt_aware, 0.5, tmp_path / "out", mode="both")
    assert both["mode"] == "with-prompt"
    assert both["overall"]["accuracy"] == 1.0
    assert both["response_only"]["overall"] == alone["overall"]
    assert both["response_only"]["by_category"] == alone["by_category"]
    rows = [json.loads(x) for x in (tmp_path / "out" / "scores.jsonl").read_text().splitlines()]
    first = rows[0]
    assert (first["id"], first["score"], first["score_response_only"]) == ("a", 0.1, 0.9)
    assert rows[0]["category"] == "requested"
    assert "response only (prompts withheld):" in summary(both)
    with pytest.raises(ValueError, match="mode must be one of"):
        run_eval(path, _prompt_aware, 0.5, mode="prompt")


def test_untagged_files_keep_their_report_shape(tmp_path: Path) -> None:
    report = run_eval(_file(tmp_path, ROWS), _scorer, 0.5)
    assert not {"by_category", "by_subcategory", "by_lang", "by_needs_prompt"} & set(report)
    assert "response_only" not in report


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ('{"response": "x", "label": "refusal", "category": 3}', "'category' is not a string"),
        ('{"response": "x", "label": "refusal", "lang": ["fr"]}', "'lang' is not a string"),
        ('{"response": "x", "label": "refusal", "needs_prompt": "yes"}',
         "'needs_prompt' must be true or false"),
    ],
)  # fmt: skip
def test_bad_tags_name_the_line(tmp_path: Path, bad: str, message: str) -> None:
    with pytest.raises(EvalInputError, match=f"line 2: {message}"):
        read_labelled(_file(tmp_path, [ROWS[0], bad]))


def test_cli_reports_the_hard_cases_per_category_both_ways(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from hard_cases import HARD_CASES_PATH, load_hard_cases

    cases = load_hard_cases()
    assert main([str(HARD_CASES_PATH), "--model", "keyword", "--mode", "both", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"] == len(cases)
    assert set(report["by_category"]) == {c.category for c in cases}
    assert sum(m["n"] + m["partial_refusals"] for m in report["by_category"].values()) == len(cases)
    assert report["by_needs_prompt"]["needs_prompt"]["n"] == sum(c.needs_prompt for c in cases)
    assert set(report["response_only"]["by_category"]) == set(report["by_category"])
