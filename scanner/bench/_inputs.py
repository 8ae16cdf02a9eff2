"""Benchmark inputs: a seeded sample of real responses, synthetic long outputs, a stream.

Everything is drawn from the labelled data files (``../shared/data``) with a fixed seed, so two
runs, and the two sides of one run (norefusal and LLM Guard), scan exactly the same texts.
Token counts are approximate: :data:`CHARS_PER_TOKEN` characters per token, the usual rate of
English text under BPE and WordPiece tokenizers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .._jsonl import iter_objects

__all__ = ["CHARS_PER_TOKEN", "LENGTH_TOKENS", "BenchInputs", "load_inputs"]

CHARS_PER_TOKEN = 4
#: Output lengths (tokens) of the cost-versus-length measurement; the first is the reference.
LENGTH_TOKENS: tuple[int, ...] = (100, 2000, 8000, 20000)
SHORT_CHARS = 400  # a "short" refusal or answer is at most this long
LONG_CHARS = 2000  # a "long" answer is at least this long


@dataclass(frozen=True)
class BenchInputs:
    """What every scanner is measured on."""

    sample: list[tuple[str, str]]
    composition: dict[str, int]
    lengths: dict[str, str]
    stream_prompt: str
    deltas: list[str]
    seed: int
    settings: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The form the LLM Guard baseline script reads (``--inputs``)."""
        return {
            "sample": [list(pair) for pair in self.sample],
            "lengths": self.lengths,
            "stream": {"prompt": self.stream_prompt, "deltas": self.deltas},
            **self.settings,
        }

    def describe(self) -> dict[str, Any]:
        """Sizes, not texts: for the report and the JSON results."""
        return {
            "sample": self.composition,
            "length_chars": {k: len(v) for k, v in self.lengths.items()},
            "stream_chars": sum(len(d) for d in self.deltas),
            "stream_deltas": len(self.deltas),
            "seed": self.seed,
            **self.settings,
        }


def _rows(data: Path) -> list[dict[str, Any]]:
    files = sorted(data.glob("*.jsonl"))
    if not files:
        raise FileNotFoundError(
            f"No *.jsonl data files in {data}: pass --data DIR (the shared refusal data, "
            "rows with prompt, response and label)."
        )
    rows: list[dict[str, Any]] = []
    for path in files:
        rows.extend(row for _, row in iter_objects(path) if isinstance(row.get("response"), str))
    return rows


def _pick(pool: list[tuple[str, str]], n: int, rng: random.Random, what: str) -> list[Any]:
    if not pool:
        raise ValueError(f"The data has no {what}: the sample needs some.")
    if n <= len(pool):
        return rng.sample(pool, n)
    return list(pool) + [rng.choice(pool) for _ in range(n - len(pool))]


def _filler(pool: list[str], chars: int, rng: random.Random) -> str:
    """Real answers joined by blank lines up to ``chars`` characters, cut at a word boundary."""
    order = list(pool)
    rng.shuffle(order)
    parts: list[str] = []
    size = 0
    while size < chars:
        for text in order:
            parts.append(text.strip())
            size += len(parts[-1]) + 2
            if size >= chars:
                break
    text = "\n\n".join(parts)[:chars]
    cut = text.rfind(" ")
    return text[:cut] if cut > chars // 2 else text


def load_inputs(
    data: Path,
    *,
    sample_size: int,
    seed: int = 0,
    stream_tokens: int = 4000,
    delta_chars: int = 64,
    length_tokens: tuple[int, ...] = LENGTH_TOKENS,
    settings: dict[str, int] | None = None,
) -> BenchInputs:
    """Draw the inputs from the data files in ``data``.

    The sample is a third each of short refusals (label ``refusal``), short answers and long
    answers (label ``compliance``). Long outputs and the stream are real answers joined up to
    length.

    Raises:
        FileNotFoundError: no data files in ``data``.
        ValueError: a malformed row, or a kind of text the sample needs is missing.
    """
    rows = _rows(data)
    rng = random.Random(seed)
    pairs = [(str(r.get("prompt") or ""), r["response"]) for r in rows if r["response"].strip()]
    labels = [r.get("label") for r in rows if r["response"].strip()]
    refusals = [p for p, lab in zip(pairs, labels, strict=True) if lab == "refusal"]
    answers = [p for p, lab in zip(pairs, labels, strict=True) if lab == "compliance"]
    short_refusals = [p for p in refusals if len(p[1]) <= SHORT_CHARS]
    short_answers = [p for p in answers if len(p[1]) <= SHORT_CHARS]
    long_answers = [p for p in answers if len(p[1]) >= LONG_CHARS]
    third = max(1, sample_size // 3)
    parts = {
        "short refusals": _pick(short_refusals, third, rng, "short refusal (label 'refusal')"),
        "short answers": _pick(short_answers, third, rng, "short answer (label 'compliance')"),
        "long answers": _pick(
            long_answers, sample_size - 2 * third, rng, f"answer of {LONG_CHARS}+ characters"
        ),
    }
    sample = [pair for part in parts.values() for pair in part]
    rng.shuffle(sample)
    texts = [o for _, o in answers] or [o for _, o in pairs]
    lengths = {str(t): _filler(texts, t * CHARS_PER_TOKEN, rng) for t in length_tokens}
    prompt, _ = rng.choice(long_answers)
    stream = _filler(texts, stream_tokens * CHARS_PER_TOKEN, rng)
    deltas = [stream[i : i + delta_chars] for i in range(0, len(stream), delta_chars)]
    return BenchInputs(
        sample=sample,
        composition={k: len(v) for k, v in parts.items()},
        lengths=lengths,
        stream_prompt=prompt,
        deltas=deltas,
        seed=seed,
        settings=dict(settings or {}),
    )
