"""``norefusal audit`` on the local engine: every input shape, errors, the summary and report."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _audit_rows import pair_rows, write_jsonl, write_parquet
from norefusal import MissingDependencyError, NoRefusalScanner
from norefusal._cli import main as norefusal_main
from norefusal.audit import ShapeError, audit

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

KEYWORD = {"model": "keyword"}
REFUSAL = "I'm sorry, but I can't help with that."
ANSWER = "Paris is the capital of France."


def results(out: Path) -> list[dict[str, Any]]:
    return list(pq.read_table(out / "results.parquet").to_pylist())


def errors(out: Path) -> list[dict[str, Any]]:
    lines = (out / "errors.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


# -- shapes ----------------------------------------------------------------------------------


def test_pairs_score_exactly_as_scan_batch_and_keep_columns(tmp_path: Path) -> None:
    rows = pair_rows(300, seed=1)
    path = write_jsonl(tmp_path / "logs.jsonl", rows)
    got = audit([path], out=tmp_path / "out", scanner=KEYWORD, keep=["id", "route"]).summary
    expected = NoRefusalScanner(model="keyword").scan_batch(
        [(r["prompt"], r["response"]) for r in rows]
    )
    found = results(tmp_path / "out")
    assert [r["id"] for r in found] == [r["id"] for r in rows]
    assert [r["row"] for r in found] == list(range(1, 301))  # the line numbers
    assert [r["score"] for r in found] == [e.score for e in expected]
    assert [r["is_refusal"] for r in found] == [e.is_refusal for e in expected]
    assert {r["signal"] for r in found} == {"classifier"}
    assert [r["model"] for r in found] == [r["model"] for r in rows]
    assert [r["route"] for r in found] == [r["route"] for r in rows]
    assert got["outputs"] == 300
    assert got["refusals"] == sum(e.is_refusal for e in expected)
    assert 0 < got["refusals"] < 300


def test_the_default_model_scores_bit_for_bit_as_scan(tmp_path: Path) -> None:
    rows = pair_rows(24, seed=2)
    rows[3]["response"] = "   "
    path = write_jsonl(tmp_path / "logs.jsonl", rows)
    audit([path], out=tmp_path / "out")
    scanner = NoRefusalScanner()
    found = results(tmp_path / "out")
    for row, result in zip(rows, found, strict=True):
        alone = scanner.scan(row["prompt"], row["response"])
        assert (result["score"], result["is_refusal"]) == (alone.score, alone.is_refusal)
        assert result["signal"] == alone.signal.value
    assert found[3]["signal"] == "empty"


def test_messages_score_every_assistant_turn(tmp_path: Path) -> None:
    conversation = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "How do I pick a lock?"},
        {"role": "assistant", "content": [{"type": "text", "text": REFUSAL}]},
        {"role": "user", "content": "Then write me a poem."},
        {"role": "assistant", "content": None, "refusal": "I can't write that poem."},
    ]
    rows = [{"id": "c1", "model": "gpt-a", "messages": conversation}]
    path = write_jsonl(tmp_path / "chat.jsonl", rows)
    audit([path], out=tmp_path / "out", scanner=KEYWORD, keep=["id"])
    found = results(tmp_path / "out")
    assert [(r["turn"], r["is_refusal"], r["signal"]) for r in found] == [
        (2, False, "classifier"),
        (4, True, "classifier"),
        (6, True, "provider"),  # message.refusal decides, as in the OpenAI integration
    ]
    assert found[2]["detail"] == "message.refusal"
    assert found[2]["score"] == 1.0
    assert {r["id"] for r in found} == {"c1"}


def test_each_turn_is_prompted_with_the_conversation_before_it() -> None:
    from norefusal._text import role_tagged
    from norefusal.audit._shapes import Shape, turns_of

    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"},
        {"role": "assistant", "content": "d"},
    ]
    turns = turns_of(Shape.MESSAGES, {"messages": messages}, None)
    assert [(t.turn, t.prompt, t.output) for t in turns] == [
        (1, role_tagged(messages[:1]), "b"),
        (3, role_tagged(messages[:3]), "d"),
    ]
    assert turns[1].prompt == "<|user|>a<|assistant|>b<|user|>c"


def test_parquet_inputs_read_like_json_lines(tmp_path: Path) -> None:
    rows = pair_rows(50, seed=3)
    chat = [
        {
            "id": "x",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": REFUSAL},
            ],
        },
        {
            "id": "y",
            "messages": [
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": ANSWER},
            ],
        },
    ]
    audit([write_parquet(tmp_path / "p.parquet", rows)], out=tmp_path / "a", scanner=KEYWORD)
    audit([write_jsonl(tmp_path / "p.jsonl", rows)], out=tmp_path / "b", scanner=KEYWORD)
    drop = ["source"]
    a = pq.read_table(tmp_path / "a" / "results.parquet").drop_columns(drop)
    b = pq.read_table(tmp_path / "b" / "results.parquet").drop_columns(drop)
    assert a.equals(b)
    audit([write_parquet(tmp_path / "c.parquet", chat)], out=tmp_path / "c", scanner=KEYWORD)
    found = results(tmp_path / "c")
    assert [(r["row"], r["turn"], r["is_refusal"]) for r in found] == [(1, 1, True), (2, 1, False)]


def _batch_files(tmp_path: Path) -> tuple[Path, Path]:
    def request(custom_id: str, question: str) -> dict[str, Any]:
        return {
            "custom_id": custom_id,
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": question}],
                "metadata": {"template": f"tpl-{custom_id}"},
            },
        }

    def output(custom_id: str, choices: list[dict[str, Any]] | None, status: int = 200) -> dict:
        body = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1767312000,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": choices,
        }
        return {
            "id": f"batch_req_{custom_id}",
            "custom_id": custom_id,
            "response": {"status_code": status, "request_id": "req_1", "body": body},
            "error": None,
        }

    def choice(content: str | None, *, refusal: str | None = None, finish: str = "stop") -> dict:
        return {
            "index": 0,
            "message": {"role": "assistant", "content": content, "refusal": refusal},
            "finish_reason": finish,
        }

    requests = [request(f"req-{i}", f"question {i}") for i in range(5)]
    requests.append(
        {
            "custom_id": "resp-1",
            "method": "POST",
            "url": "/v1/responses",
            "body": {"model": "gpt-4o", "instructions": "Be brief.", "input": "question r"},
        }
    )
    outputs = [
        output("req-0", [choice(ANSWER)]),
        output("req-1", [choice(REFUSAL), {**choice(ANSWER), "index": 1}]),
        output("req-2", [choice(None, refusal="I can't help with that.")]),
        output("req-3", [choice("", finish="content_filter")]),
        output("req-4", None, status=500),
        {
            "id": "batch_req_9",
            "custom_id": "req-9",
            "response": None,
            "error": {"code": "batch_expired", "message": "expired"},
        },
        output("nobody", [choice(ANSWER)]),
        {
            "id": "batch_req_r",
            "custom_id": "resp-1",
            "error": None,
            "response": {
                "status_code": 200,
                "request_id": "req_2",
                "body": {
                    "object": "response",
                    "model": "gpt-4o",
                    "created_at": 1767312000,
                    "output": [
                        {
                            "type": "message",
                            "role": "assistant",
                            "content": [{"type": "refusal", "refusal": "I can't do that."}],
                        }
                    ],
                },
            },
        },
    ]
    return (
        write_jsonl(tmp_path / "batch_output.jsonl", outputs),
        write_jsonl(tmp_path / "batch_input.jsonl", requests),
    )


def test_batch_outputs_join_their_requests_on_custom_id(tmp_path: Path) -> None:
    output, requests = _batch_files(tmp_path)
    result = audit(
        [output],
        out=tmp_path / "out",
        requests=[requests],
        scanner=KEYWORD,
        keep=["custom_id", "template"],
        group_by=["day"],
    )
    found = results(tmp_path / "out")
    assert [(r["custom_id"], r["turn"], r["is_refusal"], r["signal"]) for r in found] == [
        ("req-0", 0, False, "classifier"),
        ("req-1", 0, True, "classifier"),
        ("req-1", 1, False, "classifier"),
        ("req-2", 0, True, "provider"),
        ("req-3", 0, True, "provider"),
        ("resp-1", 0, True, "provider"),
    ]
    assert found[0]["model"] == "gpt-4o-mini-2024-07-18"  # from the response body
    assert found[0]["template"] == "tpl-req-0"  # from the request's metadata
    assert found[4]["detail"] == "finish_reason=content_filter"
    assert {r["day"] for r in found} == {"2026-01-02"}  # body.created / created_at
    assert [(e["row"], e["reason"]) for e in errors(tmp_path / "out")] == [
        (5, "the request failed (status 500)"),
        (6, "the request failed (batch_expired)"),
        (7, "its custom_id is in none of the request files (--requests)"),
    ]
    assert result.summary["errors"] == 3


def test_batch_prompts_come_from_the_request_file(tmp_path: Path) -> None:
    from norefusal.audit._read import load_requests
    from norefusal.audit._shapes import Shape, turns_of
    from norefusal.audit._sources import list_sources

    output, requests = _batch_files(tmp_path)
    index = load_requests(list_sources([str(requests)]))
    row = json.loads(output.read_text().splitlines()[1])
    assert [t.prompt for t in turns_of(Shape.BATCH, row, index)] == ["<|user|>question 1"] * 2
    row = json.loads(output.read_text().splitlines()[-1])
    (turn,) = turns_of(Shape.BATCH, row, index)
    assert turn.prompt == "<|system|>Be brief.<|user|>question r"


def test_batch_outputs_need_their_request_files(tmp_path: Path) -> None:
    output, requests = _batch_files(tmp_path)
    with pytest.raises(ValueError, match="--requests FILE"):
        audit([output], out=tmp_path / "out", scanner=KEYWORD)
    with pytest.raises(ShapeError, match=r"batch_input.jsonl, line 1: .*--requests"):
        audit([requests], out=tmp_path / "out", scanner=KEYWORD)
    first = json.loads(requests.read_text().splitlines()[0])
    duplicate = write_jsonl(tmp_path / "again.jsonl", [first])
    with pytest.raises(ValueError, match="custom_id 'req-0' is already used at"):
        audit([output], out=tmp_path / "out", requests=[requests, duplicate], scanner=KEYWORD)


# -- many files, URLs, bad rows --------------------------------------------------------------


def test_a_folder_gz_and_file_urls_read_in_a_stable_order(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "day2").mkdir(parents=True)
    write_jsonl(logs / "b.jsonl", pair_rows(5, start=0))
    with gzip.open(logs / "day2" / "c.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in pair_rows(5, start=5))
    write_parquet(logs / "a.parquet", pair_rows(5, start=10))
    (logs / "_SUCCESS").write_text("")
    (logs / ".hidden.jsonl").write_text("not json\n")
    (logs / "notes.txt").write_text("skip me\n")
    audit([logs], out=tmp_path / "out", scanner=KEYWORD, keep=["id"])
    found = results(tmp_path / "out")
    assert [r["id"] for r in found] == [f"r{i}" for i in (*range(10, 15), *range(5), *range(5, 10))]
    assert found[0]["source"] == f"{logs}/a.parquet"
    assert found[5]["source"] == f"{logs}/b.jsonl"
    assert found[10]["source"] == f"{logs}/day2/c.jsonl.gz"
    audit([logs.as_uri()], out=tmp_path / "url", scanner=KEYWORD, keep=["id"])
    via_url = results(tmp_path / "url")
    assert [r["source"] for r in via_url][:1] == [f"{logs.as_uri()}/a.parquet"]
    assert [r["id"] for r in via_url] == [r["id"] for r in found]
    assert [r["score"] for r in via_url] == [r["score"] for r in found]


def test_bad_rows_go_to_the_errors_file_and_the_job_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "logs.jsonl"
    lines = [
        json.dumps({"prompt": "q", "response": ANSWER}),
        '{"prompt": "q", "response": ',
        "[1, 2]",
        json.dumps({"prompt": "q"}),
        "",
        json.dumps({"prompt": 3, "response": ANSWER}),
        json.dumps({"response": REFUSAL}),
        '{"response": "\\ud800 lone surrogate"}',
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = audit([path], out=tmp_path / "out", scanner=KEYWORD)
    assert [(e["source"], e["row"]) for e in errors(tmp_path / "out")] == [
        (str(path), 2),
        (str(path), 3),
        (str(path), 4),
        (str(path), 6),
    ]
    reasons = [e["reason"] for e in errors(tmp_path / "out")]
    assert reasons[0].startswith("invalid JSON")
    assert reasons[1:] == [
        "a row must be a JSON object",
        "a row needs 'response' (and 'prompt')",
        "'response' and 'prompt' must be strings",
    ]
    assert [r["row"] for r in results(tmp_path / "out")] == [1, 7, 8]
    assert result.summary["errors"] == 4
    assert result.summary["outputs"] == 3


def test_a_truncated_archive_ends_in_one_error_row(tmp_path: Path) -> None:
    data = gzip.compress("".join(json.dumps(r) + "\n" for r in pair_rows(2000)).encode())
    path = tmp_path / "cut.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    write_jsonl(tmp_path / "next.jsonl", pair_rows(3, start=5000))
    result = audit([path, tmp_path / "next.jsonl"], out=tmp_path / "out", scanner=KEYWORD)
    (error,) = errors(tmp_path / "out")
    assert error["source"] == str(path)
    assert error["reason"].startswith("the rest of the file could not be read")
    found = results(tmp_path / "out")
    assert found[-1]["source"] == str(tmp_path / "next.jsonl")  # the job went on
    assert 0 < result.summary["outputs"] - 3 == error["row"] - 1 < 2000


def test_mixed_shapes_fail_naming_the_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write_jsonl(tmp_path / "a.jsonl", pair_rows(3))
    rows: list[Any] = [*pair_rows(2), {"messages": [{"role": "assistant", "content": "x"}]}]
    second = write_jsonl(tmp_path / "b.jsonl", rows)
    with pytest.raises(
        ShapeError,
        match=r"b\.jsonl, line 3: a 'messages' row in an input of "
        r"'pairs' rows \(first seen at .*a\.jsonl, line 1\)",
    ):
        audit([first, second], out=tmp_path / "out", scanner=KEYWORD)
    assert not (tmp_path / "out" / "results.parquet").exists()
    assert list((tmp_path / "out").iterdir()) == []  # nothing half-written is left
    argv = ["audit", str(first), str(second), "--out", str(tmp_path / "cli"), "--model", "keyword"]
    assert norefusal_main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("norefusal audit: error: ")
    assert "b.jsonl, line 3" in err
    assert len(err.splitlines()) == 1


# -- summary and report ----------------------------------------------------------------------


def test_the_summary_counts_by_every_group_by_column(tmp_path: Path) -> None:
    rows = pair_rows(400, seed=5)
    path = write_jsonl(tmp_path / "logs.jsonl", rows)
    result = audit(
        [path],
        out=tmp_path / "out",
        scanner=KEYWORD,
        group_by=["model", "route", "template", "day"],
    )
    found = results(tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary == result.summary
    for column in ("model", "route", "template", "day"):
        groups = summary["by"][column]
        values = sorted({r[column] for r in found})
        assert [g["value"] for g in groups] == values
        for group in groups:
            mine = [r for r in found if r[column] == group["value"]]
            assert group["outputs"] == len(mine)
            assert group["refusals"] == sum(r["is_refusal"] for r in mine)
            low, high = group["ci95"]
            assert low <= group["rate"] <= high
    assert [g["value"] for g in summary["by"]["day"]] == ["2026-01-01", "2026-01-02", "2026-01-03"]
    assert summary["scanner"] == {"model": "keyword", "threshold": 0.5}


def test_the_report_has_tables_and_charts(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    path = write_jsonl(tmp_path / "logs.jsonl", pair_rows(60))
    result = audit([path], out=tmp_path / "out", scanner=KEYWORD, group_by=["model", "day"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| model | outputs | refusals | refusal rate | 95% CI |" in report
    assert "![Refusal rate by model](charts/by-model.png)" in report
    for name in ("by-model.png", "by-day.png"):
        assert (tmp_path / "out" / "charts" / name).read_bytes()[:4] == b"\x89PNG"
    assert result.skipped == ()


def test_without_matplotlib_the_report_says_what_it_skipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    path = write_jsonl(tmp_path / "logs.jsonl", pair_rows(20))
    result = audit([path], out=tmp_path / "out", scanner=KEYWORD, group_by=["model"])
    report = (tmp_path / "out" / "report.md").read_text()
    assert "matplotlib is not installed" in report
    assert "| model |" in report
    assert not (tmp_path / "out" / "charts").exists()
    assert len(result.skipped) == 1
    assert "matplotlib" in result.skipped[0]


# -- options, extras, the command line -------------------------------------------------------


def test_kept_columns_may_not_shadow_result_columns(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", pair_rows(2))
    with pytest.raises(ValueError, match="may not be called 'score'"):
        audit([path], out=tmp_path / "out", scanner=KEYWORD, keep=["score"])


def test_a_missing_pyarrow_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", pair_rows(2))
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "norefusal\[audit\]"'):
        audit([path], out=tmp_path / "out", scanner=KEYWORD)
    assert norefusal_main(["audit", str(path), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1  # one line, naming the install that fixes it
    assert err.startswith("norefusal audit: error: ")
    assert '".[audit]"' in err
    assert "pyarrow" in err


def test_the_cli_writes_the_folder_and_one_summary_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", pair_rows(40), bad_every=10)
    argv = [
        "audit",
        str(path),
        "--out",
        str(tmp_path / "out"),
        "--model",
        "keyword",
        "--keep",
        "id",
        "--group-by",
        "model,route",
    ]
    assert norefusal_main(argv) == 0
    err = capsys.readouterr().err
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["errors"] == 4
    assert f"audited 40 outputs from 1 file(s): {summary['refusals']} refusals" in err
    assert "4 rows could not be read" in err
    names = {p.name for p in (tmp_path / "out").iterdir()}
    assert {"results.parquet", "errors.jsonl", "summary.json", "report.md"} <= names
    assert pq.read_table(tmp_path / "out" / "results.parquet").column_names[:6] == [
        "source",
        "row",
        "turn",
        "model",
        "id",
        "route",
    ]


def test_the_local_engine_imports_no_ray(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "logs.jsonl", pair_rows(3))
    code = (
        "import sys; from norefusal.audit import audit; "
        f"audit([{str(path)!r}], out={str(tmp_path / 'out')!r}, scanner={{'model': 'keyword'}}); "
        "assert 'ray' not in sys.modules, 'ray was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


# -- the math --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("refusals", "n", "low", "high"),
    [  # Newcombe (1998), Statistics in Medicine 17:857, table I, method 3 (Wilson score)
        (81, 263, 0.2553, 0.3662),
        (15, 148, 0.0624, 0.1605),
        (0, 20, 0.0000, 0.1611),
        (1, 29, 0.0061, 0.1718),
    ],
)
def test_wilson_intervals_match_published_values(
    refusals: int, n: int, low: float, high: float
) -> None:
    from norefusal.audit import wilson

    interval = wilson(refusals, n)
    assert interval is not None
    assert interval == pytest.approx((low, high), abs=5e-5)
    mirrored = wilson(n - refusals, n)
    assert mirrored == pytest.approx((1 - high, 1 - low), abs=5e-5)


def test_wilson_of_nothing_is_none_and_bad_counts_raise() -> None:
    from norefusal.audit import wilson

    assert wilson(0, 0) is None
    with pytest.raises(ValueError, match="refusals must be in"):
        wilson(3, 2)


def test_summaries_add_up_table_by_table() -> None:
    from norefusal.audit._summary import Summary

    table = pa.table(
        {
            "model": ["a", "b", "a", None, "b", "a"],
            "is_refusal": [True, False, False, True, True, True],
            "signal": ["classifier", "classifier", "empty", "provider", "classifier", "classifier"],
        }
    )
    whole, parts = Summary(["model"]), Summary(["model"])
    whole.add(table)
    for start in range(0, 6, 2):
        parts.add(table.slice(start, 2))
    assert whole.to_dict() == parts.to_dict()
    data = whole.to_dict()
    assert (data["outputs"], data["refusals"]) == (6, 4)
    assert data["signals"] == {"classifier": 4, "empty": 1, "provider": 1}
    assert [(g["value"], g["outputs"], g["refusals"]) for g in data["by"]["model"]] == [
        ("a", 3, 2),
        ("b", 2, 1),
        (None, 1, 1),
    ]


@pytest.mark.parametrize(
    ("value", "day"),
    [
        (1767225600, "2026-01-01"),
        (1767225600123, "2026-01-01"),  # milliseconds
        (1767225599.5, "2025-12-31"),
        ("2026-01-01T23:30:00-02:00", "2026-01-02"),  # UTC day
        ("2026-01-01T10:00:00Z", "2026-01-01"),
        ("2026-01-01", "2026-01-01"),
        ("yesterday", None),
        (True, None),
        (float("nan"), None),
    ],
)
def test_days_come_from_epochs_and_iso_timestamps(value: object, day: str | None) -> None:
    from norefusal.audit._read import _day

    assert _day(value) == day
