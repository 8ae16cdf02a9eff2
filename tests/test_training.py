"""Fast tests of the training recipe's parts: split, license gating, generators, export."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
from norefusal.training import _synth
from norefusal.training._data import (
    LicenseError,
    Row,
    is_trainable,
    looks_like_refusal,
    read_jsonl,
    training_mix,
    xstest_split,
)

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "scanner"


def _write(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _xstest_rows(n_prompts: int = 120) -> list[dict[str, str]]:
    rows = []
    for p in range(n_prompts):
        for m, label in enumerate(("refusal", "compliance", "partial_refusal")):
            rows.append({"id": f"x-{p}-{m}", "prompt": f"How do I kill process {p}?",
                         "response": f"answer {p} {m}", "label": label,
                         "model": f"m{m}"})  # fmt: skip
    return rows


def test_xstest_split_is_by_prompt_and_fixed() -> None:
    rows = [Row(id=r["id"], prompt=r["prompt"], response=r["response"], label=r["label"],
                source="xstest_human.jsonl") for r in _xstest_rows()]  # fmt: skip
    parts = xstest_split(rows)
    prompts = {name: {r.prompt for r in part} for name, part in parts.items()}
    assert not prompts["train"] & prompts["test"]
    assert not prompts["train"] & prompts["val"]
    assert not prompts["val"] & prompts["test"]
    assert sum(len(p) for p in parts.values()) == len(rows)
    assert 0.15 < len(parts["test"]) / len(rows) < 0.45  # about 30% of prompts
    # The split depends on the prompt text only, not on file order.
    again = xstest_split(list(reversed(rows)))
    assert {r.id for r in again["test"]} == {r.id for r in parts["test"]}


def test_real_xstest_split_has_no_shared_prompt() -> None:
    path = Path(__file__).resolve().parents[2] / "shared" / "data" / "xstest_human.jsonl"
    if not path.exists():
        pytest.skip(f"{path} not found: the shared data is not checked out beside the project")
    parts = xstest_split(read_jsonl(path))
    assert not {r.prompt for r in parts["train"]} & {r.prompt for r in parts["test"]}
    assert not {r.prompt for r in parts["val"]} & {r.prompt for r in parts["test"]}


def test_license_table() -> None:
    assert is_trainable("xstest_human.jsonl")
    assert not is_trainable("alpacaeval_compliance_nc.jsonl")
    assert not is_trainable("some_new_file.jsonl")  # unknown license: not trainable


def test_training_refuses_non_commercial_rows(tmp_path: Path) -> None:
    _write(tmp_path / "xstest_human.jsonl", _xstest_rows(10))
    _write(tmp_path / "alpacaeval_compliance_nc.jsonl",
           [{"id": "a", "prompt": "p", "response": "r", "label": "compliance"}])  # fmt: skip
    files = ["xstest_human.jsonl", "alpacaeval_compliance_nc.jsonl"]
    with pytest.raises(LicenseError, match="alpacaeval_compliance_nc"):
        training_mix(tmp_path, seed=1, files=files)
    mix = training_mix(tmp_path, seed=1, files=files, eval_only=True)
    assert any(r.source == "alpacaeval_compliance_nc.jsonl" for r in mix["train"])


def test_train_cli_gates_before_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from norefusal.training._train import main

    _write(tmp_path / "xstest_human.jsonl", _xstest_rows(10))
    _write(tmp_path / "alpaca_seed_compliance_nc.jsonl",
           [{"id": "a", "prompt": "p", "response": "r", "label": "compliance"}])  # fmt: skip
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--out", str(tmp_path / "out"),
              "--files", "xstest_human.jsonl,alpaca_seed_compliance_nc.jsonl"])  # fmt: skip
    assert "--eval-only" in capsys.readouterr().err
    # Evaluation-only models may never be written into the package.
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), "--out", str(PACKAGE_DIR / "models" / "evalonly"),
              "--eval-only"])  # fmt: skip
    assert "package" in capsys.readouterr().err
    assert not (PACKAGE_DIR / "models" / "evalonly").exists()


def test_generators_cover_documented_categories() -> None:
    rows = _synth.generate(13)
    by_gen: dict[str, set[str]] = {}
    for r in rows:
        by_gen.setdefault(r.source.removeprefix("synthetic:"), set()).add(r.label)
    assert by_gen == {
        "short_answers": {"compliance"},
        "refusal_word_mentions": {"compliance"},
        "late_refusals": {"refusal"},
        "terse_refusals": {"refusal"},
        "foreign_refusals": {"refusal"},
    }
    for name in by_gen:  # every generator is documented in the module docstring
        assert f"``{name}``" in (_synth.__doc__ or "")
    texts = {name: [r.response for r in rows if r.source == f"synthetic:{name}"] for name in by_gen}
    assert np.median([len(t) for t in texts["short_answers"]]) < 40
    assert any(t.lstrip("`").startswith(("{", "json")) for t in texts["short_answers"])
    assert any("```" in t for t in texts["short_answers"])
    mentions = texts["refusal_word_mentions"]
    words = re.compile(
        r"sorry|apolog|can't|cannot|won't|unable|not allowed|refus|unfortunately|denied|decline"
        r"|error|don't"
        r"|\bno\b|\bnot\b|kann nicht|no puedo|non posso|não posso|ne peux|できません",
        re.IGNORECASE,
    )
    assert all(words.search(t) for t in mentions)
    assert any("raise" in t or "throw" in t or "Error" in t for t in mentions)
    assert any("translation" in t.lower() or " means " in t for t in mentions)
    late = texts["late_refusals"]
    assert min(len(t) for t in late) > 300
    ending = re.compile(r"rather not|not something I'm willing", re.IGNORECASE)
    assert all(looks_like_refusal(t[-250:]) or ending.search(t[-250:]) for t in late)
    assert all(len(t) < 200 for t in texts["terse_refusals"])


def test_generators_are_deterministic() -> None:
    assert _synth.generate(7) == _synth.generate(7)
    assert _synth.generate(7) != _synth.generate(8)


def test_export_matches_torch(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    from norefusal.export import export_onnx, file_sha256

    torch.manual_seed(0)
    config = transformers.BertConfig(
        vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=64,
        id2label={0: "compliance", 1: "refusal"}, label2id={"compliance": 0, "refusal": 1},
    )  # fmt: skip
    model = transformers.BertForSequenceClassification(config).eval()
    src = tmp_path / "hf"
    model.save_pretrained(src, safe_serialization=True)
    tok = {"version": "1.0", "model": {"type": "WordLevel", "vocab": {"[UNK]": 0, "[PAD]": 1},
                                       "unk_token": "[UNK]"}}  # fmt: skip
    (src / "tokenizer.json").write_text(json.dumps(tok))

    out = tmp_path / "onnx"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        config_out = export_onnx(src, out, quantize=False, threshold=0.4, temperature=1.5)
    # The export runs in inference mode (dropout off): torch warns of a module in training mode.
    assert not [w for w in caught if "training mode" in str(w.message)]
    assert config_out["labels"] == ["compliance", "refusal"]
    assert config_out["refusal_label"] == "refusal"
    assert config_out["threshold"] == 0.4
    assert config_out["temperature"] == 1.5
    assert config_out["files"]["model.onnx"] == file_sha256(out / "model.onnx")
    assert json.loads((out / "norefusal.json").read_text()) == config_out

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    assert names == ["input_ids", "attention_mask", "token_type_ids"]
    rng = np.random.default_rng(1)
    ids = rng.integers(2, 200, size=(4, 37), dtype=np.int64)  # a shape not used at export
    mask = np.ones_like(ids)
    mask[2, 20:] = 0
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    (got,) = session.run(["logits"], feeds)
    with torch.no_grad():
        want = model(**{k: torch.from_numpy(v) for k, v in feeds.items()}).logits.numpy()
    assert np.max(np.abs(got - want)) <= 1e-4

    quant = export_onnx(src, tmp_path / "int8", quantize=True)
    session8 = ort.InferenceSession(str(tmp_path / "int8" / "model.onnx"))
    (got8,) = session8.run(["logits"], feeds)
    assert got8.shape == (4, 2)
    assert np.all(np.isfinite(got8))
    assert quant["files"]["tokenizer.json"] == file_sha256(src / "tokenizer.json")


def test_export_refuses_pickle_only_directory(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from norefusal.export import ExportError, export_onnx

    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ExportError, match="safetensors"):
        export_onnx(tmp_path, tmp_path / "out")
