"""The multilingual recipe: generate rows, train the n-gram network, quantise, calibrate, write.

Runs on a 2-core CPU in minutes. Needs the ``train`` extra (torch). The treebank directory is
read (never shipped); the held-out evaluation set of the repository is never read.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..._artifact import CONFIG_NAME, sha256_file
from ..._backends._ngram import KIND, NgramBackend, NgramConfig, ngram_ids
from .._data import training_mix
from ._generate import TREEBANKS, Sample, dedupe, generate, read_treebanks
from ._phrases import LANGUAGES

__all__ = ["Recipe", "main", "train"]

_ARRAYS = ("emb_q", "emb_scale", "w1", "b1", "w2", "b2")
#: The held-out evaluation set: the recipe refuses to read it.
EVAL_SET_NAME = "multilingual_eval.jsonl"


@dataclass(frozen=True)
class Recipe:
    """Every choice of a training run (recorded in the artifact's ``norefusal.json``)."""

    seed: int = 13
    per_language: int = 2000
    val_per_language: int = 300
    english_rows: int = 2500
    english_weight: float = 0.5
    ngram_min: int = 1
    ngram_max: int = 5
    buckets: int = 1 << 19
    dim: int = 32
    hidden: int = 64
    head_chars: int = 1000
    tail_chars: int = 500
    epochs: int = 5
    ngram_dropout: float = 0.4
    batch: int = 128
    lr: float = 3e-3
    emb_lr: float = 1.0
    max_fpr: float = 0.01


def _english(data_dir: Path, recipe: Recipe) -> tuple[list[Sample], list[Sample]]:
    """English rows of the shared data (trainable files only, XSTest test split never)."""
    mix = training_mix(data_dir, seed=recipe.seed)
    out: dict[str, list[Sample]] = {}
    for split in ("train", "val"):
        rows = [r for r in mix[split] if r.label in ("refusal", "compliance")]
        random.Random(f"{recipe.seed}:en:{split}").shuffle(rows)
        n = recipe.english_rows if split == "train" else recipe.english_rows // 5
        out[split] = [Sample(r.response, r.label, "en", r.source) for r in rows[:n]]
    return out["train"], out["val"]


def _config(
    recipe: Recipe, name: str = "", threshold: float = 0.5, temp: float = 1.0
) -> NgramConfig:
    return NgramConfig(
        name=name, threshold=threshold, temperature=temp, ngram_min=recipe.ngram_min,
        ngram_max=recipe.ngram_max, buckets=recipe.buckets, head_chars=recipe.head_chars,
        tail_chars=recipe.tail_chars,
    )  # fmt: skip


def train(
    rows: Sequence[Sample], weights: Sequence[float], recipe: Recipe, *, log: Any = print
) -> dict[str, np.ndarray]:
    """Train the network on ``rows``; returns float32 arrays (embeddings not yet quantised)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(recipe.seed)
    torch.set_num_threads(1)  # on a shared 2-core machine a second thread waits more than it works
    config = _config(recipe)
    feats = [torch.from_numpy(ngram_ids(r.text, config)) for r in rows]
    y = torch.tensor([r.target for r in rows], dtype=torch.long)
    w = torch.tensor(list(weights), dtype=torch.float32)
    emb = torch.nn.Embedding(recipe.buckets, recipe.dim, sparse=True)
    torch.nn.init.normal_(emb.weight, std=0.05)
    first = torch.nn.Linear(recipe.dim, recipe.hidden)
    second = torch.nn.Linear(recipe.hidden, 2)
    mlp = torch.nn.Sequential(first, torch.nn.ReLU(), second)
    # Plain SGD on the embeddings: its sparse update touches only the rows a batch used
    # (SparseAdam's masks cost a pass over the whole table every step).
    opt_emb = torch.optim.SGD(list(emb.parameters()), lr=recipe.emb_lr)
    opt_mlp = torch.optim.AdamW(mlp.parameters(), lr=recipe.lr, weight_decay=1e-4)
    seen = torch.zeros(recipe.buckets, dtype=torch.bool)
    for f in feats:
        seen[f] = True
    rng = random.Random(recipe.seed)
    gen = torch.Generator().manual_seed(recipe.seed)
    order = list(range(len(rows)))
    for epoch in range(recipe.epochs):
        rng.shuffle(order)
        total, started = 0.0, time.monotonic()
        for start in range(0, len(order), recipe.batch):
            idx = order[start : start + recipe.batch]
            # n-gram dropout: each step sees a random share of a text's n-grams, so the model
            # leans on many cues ("no puedo" and "ayudarte") instead of one template's n-grams.
            kept = [
                f[torch.rand(len(f), generator=gen) >= recipe.ngram_dropout]
                for f in (feats[i] for i in idx)
            ]
            kept = [k if len(k) else feats[i][:1] for k, i in zip(kept, idx, strict=True)]
            flat = torch.cat(kept)
            sizes = torch.tensor([len(k) for k in kept])
            offsets = torch.cat([torch.zeros(1, dtype=torch.long), sizes.cumsum(0)[:-1]])
            # Sum over a text's distinct n-grams / sqrt(their number), as at inference.
            per = torch.repeat_interleave(sizes.float().rsqrt(), sizes)
            pooled = F.embedding_bag(flat, emb.weight, offsets, mode="sum",
                                     per_sample_weights=per, sparse=True)  # fmt: skip
            logits = mlp(pooled)
            loss = (F.cross_entropy(logits, y[idx], reduction="none") * w[idx]).sum() / w[idx].sum()
            opt_emb.zero_grad()
            opt_mlp.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]
            opt_emb.step()
            opt_mlp.step()
            total += loss.item() * len(idx)
        log(f"epoch {epoch + 1}/{recipe.epochs}: loss {total / len(order):.4f} "
            f"({time.monotonic() - started:.0f}s)")  # fmt: skip
    weight = emb.weight.detach().clone()
    weight[~seen] = 0.0  # an n-gram never seen in training contributes nothing, not noise
    return {
        "emb": weight.numpy(),
        "w1": first.weight.detach().numpy().T.copy(),
        "b1": first.bias.detach().numpy().copy(),
        "w2": second.weight.detach().numpy().T.copy(),
        "b2": second.bias.detach().numpy().copy(),
    }


def quantise(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Embeddings as int8 with one float32 scale per row (symmetric); the network as float32."""
    emb = arrays["emb"]
    scale = np.abs(emb).max(axis=1) / 127.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(emb / scale[:, None]), -127, 127).astype(np.int8)
    out = {k: v.astype(np.float32) for k, v in arrays.items() if k != "emb"}
    return out | {"emb_q": q, "emb_scale": scale.astype(np.float32)}


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature that minimises log loss on ``logits`` (a grid search, 0.25 to 5)."""
    margin = (logits[:, 1] - logits[:, 0]).astype(np.float64)
    best, best_t = np.inf, 1.0
    for t in np.arange(0.25, 5.0001, 0.05):
        p = 1.0 / (1.0 + np.exp(-margin / t))
        loss = -np.mean(y * np.log(p + 1e-12) + (1 - y) * np.log(1 - p + 1e-12))
        if loss < best:
            best, best_t = loss, float(t)
    return round(best_t, 4)


def choose_threshold(scores: np.ndarray, y: np.ndarray, max_fpr: float) -> float:
    """The threshold of highest recall whose false-positive rate is at most ``max_fpr``."""
    neg = np.sort(scores[y == 0])
    k = int(np.floor(max_fpr * len(neg)))
    floor = float(neg[len(neg) - 1 - k]) if len(neg) > k else 0.0
    return float(np.clip(round(max(floor, 0.05) + 0.005, 3), 0.05, 0.95))


def _metrics(scores: np.ndarray, y: np.ndarray, threshold: float) -> tuple[float, float]:
    pred = scores > threshold
    recall = float(pred[y == 1].mean()) if (y == 1).any() else float("nan")
    fpr = float(pred[y == 0].mean()) if (y == 0).any() else float("nan")
    return recall, fpr


def write_artifact(
    out: Path, arrays: dict[str, np.ndarray], recipe: Recipe, *, name: str, threshold: float,
    temperature: float, sources: dict[str, Any],
) -> None:  # fmt: skip
    """``model.npz`` and ``norefusal.json`` (with the SHA256 of the weights) into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "model.npz"
    np.savez_compressed(path, **{k: arrays[k] for k in _ARRAYS})  # type: ignore[arg-type]
    config = {
        "name": name,
        "kind": KIND,
        "labels": ["compliance", "refusal"],
        "refusal_label": "refusal",
        "threshold": threshold,
        "temperature": temperature,
        "ngram_min": recipe.ngram_min,
        "ngram_max": recipe.ngram_max,
        "buckets": recipe.buckets,
        "head_chars": recipe.head_chars,
        "tail_chars": recipe.tail_chars,
        "languages": list(LANGUAGES),
        "recipe": asdict(recipe),
        "sources": sources,
        "files": {"model.npz": sha256_file(path)},
    }
    (out / CONFIG_NAME).write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n")


def _weights(rows: Sequence[Sample], english_weight: float) -> list[float]:
    # Each language's two classes carry equal weight; English rows count english_weight.
    counts: dict[tuple[str, int], int] = {}
    for r in rows:
        counts[(r.lang, r.target)] = counts.get((r.lang, r.target), 0) + 1
    out = []
    for r in rows:
        n = counts[(r.lang, r.target)]
        share = len(rows) / (2 * len({k[0] for k in counts}) * n)
        out.append(share * (english_weight if r.lang == "en" else 1.0))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m norefusal.training.multilingual --ud DIR --data DIR --out DIR``."""
    parser = argparse.ArgumentParser(
        prog="python -m norefusal.training.multilingual",
        description="Train the multilingual character n-gram refusal model.",
    )
    parser.add_argument(
        "--ud", type=Path, required=True, help="directory of Universal Dependencies treebanks"
    )
    parser.add_argument("--data", type=Path, required=True, help="the shared data directory")
    parser.add_argument("--out", type=Path, required=True, help="where to write the model")
    parser.add_argument("--seed", type=int, default=Recipe.seed)
    parser.add_argument("--per-language", type=int, default=Recipe.per_language)
    parser.add_argument("--epochs", type=int, default=Recipe.epochs)
    args = parser.parse_args(argv)
    if any(p.name == EVAL_SET_NAME for p in (args.ud, args.data)) or list(
        args.data.glob(EVAL_SET_NAME)
    ):
        print(f"refusing to read {EVAL_SET_NAME}: it is evaluation only", file=sys.stderr)
        return 2
    recipe = Recipe(seed=args.seed, per_language=args.per_language, epochs=args.epochs)
    sentences = read_treebanks(args.ud)
    missing = sorted({lang for lang, *_ in TREEBANKS.values()} - set(sentences))
    if missing:
        print(f"missing treebanks for {missing} under {args.ud}", file=sys.stderr)
        return 2
    train_rows = generate(sentences, seed=recipe.seed, per_language=recipe.per_language)
    val_rows = generate(sentences, seed=recipe.seed + 1, per_language=recipe.val_per_language,
                        validation=True)  # fmt: skip
    en_train, en_val = _english(args.data, recipe)
    train_rows = dedupe(train_rows + en_train)
    val_rows = dedupe(val_rows + en_val)
    print(f"{len(train_rows)} training rows, {len(val_rows)} validation rows")
    arrays = quantise(train(train_rows, _weights(train_rows, recipe.english_weight), recipe))
    scratch = args.out / ".uncalibrated"
    write_artifact(scratch, arrays, recipe, name="uncalibrated", threshold=0.5, temperature=1.0,
                   sources={})  # fmt: skip
    backend = NgramBackend(scratch)
    logits = np.stack([backend.logits(r.text) for r in val_rows])
    y = np.array([r.target for r in val_rows])
    temperature = fit_temperature(logits, y)
    margin = (logits[:, 1] - logits[:, 0]) / temperature
    scores = 1.0 / (1.0 + np.exp(-margin))
    # The threshold is the multilingual model's own: English text is the English model's.
    foreign = np.array([r.lang != "en" for r in val_rows])
    threshold = choose_threshold(scores[foreign], y[foreign], recipe.max_fpr)
    for lang in LANGUAGES:
        mask = np.array([r.lang == lang for r in val_rows])
        recall, fpr = _metrics(scores[mask], y[mask], threshold)
        print(f"validation {lang}: recall {recall:.3f} FPR {fpr:.3f} ({int(mask.sum())} rows)")
    sources = {
        "treebanks": {
            k: {"language": v[0], "license": v[1], "commit": v[2]} for k, v in TREEBANKS.items()
        },
        "shared_data": "training_mix of norefusal.training (trainable files only)",
        "rows": {"train": len(train_rows), "validation": len(val_rows)},
        "recipe_sha256": hashlib.sha256(Path(__file__).read_bytes()).hexdigest(),
    }
    write_artifact(args.out, arrays, recipe, name="norefusal-multilingual-v1",
                   threshold=threshold, temperature=temperature, sources=sources)  # fmt: skip
    for leftover in scratch.iterdir():
        leftover.unlink()
    scratch.rmdir()
    print(f"wrote {args.out} (threshold {threshold}, temperature {temperature})")
    return 0
