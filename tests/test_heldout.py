"""The disclaimer-then-answer evaluation set: its selection, its loader and its command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from norefusal.evaluation._heldout import (
    DISAGREEMENTS,
    DISCLAIMER_SET,
    HAND_WRITTEN_PATH,
    disclaimer_kind,
    held_out_ids,
    main,
    read_disclaimer_set,
)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PREFIX = {
    "mtbench_answers.jsonl": "mtbench-",
    "coconot_compliance.jsonl": "coconot-",
    "alpacaeval_compliance_nc.jsonl": "alpacaeval-",
    "jbb_judge_proxy.jsonl": "jbb-",
    "gptfuzz_proxy.jsonl": "gptfuzz-",
    "xstest_human.jsonl": "xstest-",
}


def _hand_written() -> list[dict[str, object]]:
    return [json.loads(x) for x in HAND_WRITTEN_PATH.read_text().splitlines() if x.strip()]


def test_selection_and_held_out_ids() -> None:
    ids = held_out_ids()
    assert len(ids) == sum(len(v) for v in DISCLAIMER_SET.values()) == 111
    for name, selected in DISCLAIMER_SET.items():
        assert all(i.startswith(PREFIX[name]) for i in selected), name
    assert not ids & DISAGREEMENTS.keys()  # a disputed row is never in the set
    assert len(ids) + len(_hand_written()) >= 300


def test_hand_written_rows() -> None:
    rows = _hand_written()
    assert len({r["id"] for r in rows}) == len(rows) >= 200
    assert {r["label"] for r in rows} == {"compliance"}
    assert len({r["category"] for r in rows}) >= 6
    assert all(r["prompt"] and r["response"] for r in rows)


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("As an AI language model, I don't have personal opinions. However, ...", "no_opinion"),
        ("I'm not a doctor, but an itchy mole is usually harmless.", "not_a_professional"),
        ("As of my last update in 2023, the president was ...", "knowledge_cutoff"),
        ("I can't browse the web, but you can check yr.no.", "capability_then_answer"),
        ("Paris is the capital of France.", "other"),
    ],
)
def test_disclaimer_kind(text: str, kind: str) -> None:
    assert disclaimer_kind(text) == kind


def _fake_data(tmp_path: Path, drop: str | None = None) -> Path:
    for name, ids in DISCLAIMER_SET.items():
        rows = [{"id": i, "prompt": f"q {i}", "response": f"As an AI, I can't say. {i}",
                 "label": "compliance", "model": "m"} for i in ids if i != drop]  # fmt: skip
        rows.append({"id": "other-1", "prompt": "p", "response": "r", "label": "refusal"})
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_reads_rows_by_id_and_adds_the_hand_written_ones(tmp_path: Path) -> None:
    rows = read_disclaimer_set(_fake_data(tmp_path))
    natural = [r for r in rows if str(r["source"]).startswith("shared:")]
    assert [r["id"] for r in natural] == [i for ids in DISCLAIMER_SET.values() for i in ids]
    assert {r["label"] for r in rows} == {"compliance"}
    assert natural[0]["source"] == "shared:mtbench_answers.jsonl"
    assert natural[0]["category"] == "capability_then_answer"
    assert len(rows) == 111 + len(_hand_written())
    assert len(read_disclaimer_set(tmp_path, hand_written=None)) == 111


def test_missing_file_or_row_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"mtbench_answers\.jsonl not found"):
        read_disclaimer_set(tmp_path)
    with pytest.raises(ValueError, match=r"lacks 1 selected rows, e\.g\. jbb-1178"):
        read_disclaimer_set(_fake_data(tmp_path, drop="jbb-1178"))


def test_command_writes_an_eval_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "set.jsonl"
    assert main(["--data", str(_fake_data(tmp_path)), "--out", str(out), "--natural-only"]) == 0
    assert len(out.read_text().splitlines()) == 111
    assert "111 natural, 0 hand-written" in capsys.readouterr().out
    assert main(["--data", str(tmp_path / "nowhere"), "--out", str(out)]) == 1


def test_selection_against_the_shared_data() -> None:
    if not DATA.exists():
        pytest.skip(f"{DATA} not found: put the shared data at ../shared/data")
    rows = read_disclaimer_set(DATA, hand_written=None)
    labels = {}
    for name in DISCLAIMER_SET:
        for line in (DATA / name).read_text().splitlines():
            row = json.loads(line)
            labels[row["id"]] = row["label"]
    # every selected row is compliance in the shared data too, and opens with a disclaimer
    assert {labels[r["id"]] for r in rows} == {"compliance"}
    assert all(r["category"] != "other" for r in rows)
