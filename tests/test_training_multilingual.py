"""The multilingual recipe, end to end on a toy treebank directory (seconds, not the real run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from norefusal._backends._ngram import NgramBackend
from norefusal.training.multilingual import PHRASES, TREEBANKS, Recipe, generate, read_treebanks
from norefusal.training.multilingual._train import main, quantise, train, write_artifact


def _toy_treebanks(root: Path, sentences: int = 40) -> Path:
    for name, (lang, _license, _commit) in TREEBANKS.items():
        directory = root / name
        directory.mkdir(parents=True)
        lines = [
            f"# text = Sentence {i} of a toy {lang} treebank, long enough.\n"
            for i in range(sentences)
        ]
        (directory / "toy.conllu").write_text("".join(lines), encoding="utf-8")
    return root


def test_only_listed_treebanks_are_read(tmp_path: Path) -> None:
    root = _toy_treebanks(tmp_path / "ud")
    nc = root / "UD_Ukrainian-IU"  # CC BY-NC-SA: never read
    nc.mkdir()
    (nc / "uk.conllu").write_text("# text = Non-commercial sentence.\n", encoding="utf-8")
    sentences = read_treebanks(root)
    assert set(sentences) == {lang for lang, *_ in TREEBANKS.values()}
    assert all("Non-commercial" not in s for s in sentences["uk"])


def test_generated_rows_cover_every_language_and_both_labels(tmp_path: Path) -> None:
    sentences = read_treebanks(_toy_treebanks(tmp_path / "ud"))
    rows = generate(sentences, seed=1, per_language=40)
    assert {r.lang for r in rows} == set(PHRASES)
    for lang in PHRASES:
        labels = {r.label for r in rows if r.lang == lang}
        assert labels == {"refusal", "compliance"}, lang
    again = generate(sentences, seed=1, per_language=40)
    assert [r.text for r in rows] == [r.text for r in again]  # deterministic for a seed


def test_a_tiny_model_trains_quantises_and_loads(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    sentences = read_treebanks(_toy_treebanks(tmp_path / "ud"))
    rows = generate(sentences, seed=1, per_language=12)
    recipe = Recipe(buckets=4096, dim=8, hidden=8, epochs=2, batch=32)
    arrays = quantise(train(rows, [1.0] * len(rows), recipe, log=lambda _: None))
    assert arrays["emb_q"].dtype == np.int8
    write_artifact(tmp_path / "m", arrays, recipe, name="toy", threshold=0.5, temperature=1.0,
                   sources={})  # fmt: skip
    scores = NgramBackend(tmp_path / "m").predict([r.text for r in rows[:5]])
    assert np.all((scores >= 0) & (scores <= 1))


def test_the_recipe_refuses_the_evaluation_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "multilingual_eval.jsonl").write_text("{}\n")
    code = main(["--ud", str(tmp_path), "--data", str(data), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "evaluation only" in capsys.readouterr().err
