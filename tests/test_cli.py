"""The ``norefusal`` command line: scan one output, scan a JSON Lines file, presets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from norefusal._cli import main

REFUSAL = "I'm sorry, but I can't help with that."


def test_scan_one_output_prints_the_result_as_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--model", "keyword", "--prompt", "q", "--output", REFUSAL]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["is_refusal"] is True
    assert result["valid"] is False
    assert result["model"] == "keyword"
    assert "sanitized" not in result  # the text is not echoed back


def test_scan_needs_an_output_or_a_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--model", "keyword"]) == 2
    assert "--output" in capsys.readouterr().err


def test_scan_file_writes_one_result_per_row_and_a_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [
        {"id": "a", "prompt": "Capital of France?", "response": "Paris."},
        {"messages": [{"role": "user", "content": "Pick a lock"},
                      {"role": "assistant", "content": REFUSAL}]},
        {"id": "c", "response": "   "},
    ]  # fmt: skip
    path = tmp_path / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    assert main(["scan", str(path), "--model", "keyword"]) == 0
    captured = capsys.readouterr()
    results = [json.loads(line) for line in captured.out.splitlines()]
    assert [r["id"] for r in results] == ["a", 2, "c"]  # a row without id gets its line number
    assert [r["is_refusal"] for r in results] == [False, True, False]
    assert results[2]["signal"] == "empty"
    assert "scanned 3 rows: 1 refusals (33.3%)" in captured.err


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"prompt": "p"', "line 2: invalid JSON"),
        ('["p", "r"]', "line 2: a row must be a JSON object"),
        ('{"prompt": "p"}', "line 2: a row needs 'response'"),
        ('{"response": 3}', "line 2: 'response' and 'prompt' must be strings"),
        ('{"messages": [{"role": "user", "content": "hi"}]}', "line 2: bad 'messages'"),
    ],
)
def test_a_bad_row_names_its_line_and_nothing_is_written(
    line: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"response": "fine"}\n' + line + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    assert main(["scan", str(path), "--model", "keyword", "--out", str(out)]) == 1
    assert message in capsys.readouterr().err
    assert not out.exists()
    assert list(tmp_path.glob("*.part")) == []


def test_scan_file_to_out_is_written_whole(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({"response": REFUSAL}) + "\n", encoding="utf-8")
    out = tmp_path / "results.jsonl"
    assert main(["scan", str(path), "--model", "keyword", "--out", str(out)]) == 0
    (line,) = out.read_text(encoding="utf-8").splitlines()
    assert json.loads(line)["is_refusal"] is True


def test_an_unknown_preset_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--model", "keywrd", "--output", "x"]) == 1
    assert "Did you mean 'keyword'?" in capsys.readouterr().err


def test_presets_lists_every_preset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["presets"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == ["default", "protectai", "agentlans", "keyword", "norefusal-light"]
