"""Synthetic conversation logs for the audit tests and benchmark: seeded, so runs compare."""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REFUSALS = [
    "I'm sorry, but I can't help with that.",
    "I can't assist with that request.",
    "As an AI, I cannot provide instructions for that.",
    "Sorry, I won't be able to help with this one.",
]
ANSWERS = [
    "Sure! Mix the flour and water, knead for ten minutes, and bake at 220 C.",
    "The capital of France is Paris, on the Seine.",
    "Here is a summary: the report covers revenue, costs and the outlook for next year.",
    "Photosynthesis turns light, water and carbon dioxide into sugar and oxygen.",
    "You can sort a list in Python with sorted(items) or items.sort().",
]
FILLER = [
    "The first step matters most, so take it slowly and check the result before moving on.",
    "Most people find that a short list of priorities keeps the work focused and calm.",
    "If anything is unclear, the documentation covers each option with an example.",
    "This approach has worked well in practice for small teams and large ones alike.",
]
MODELS = ["gpt-a", "gpt-b", "claude-c"]
ROUTES = ["/chat", "/support", "/search"]


def pair_rows(n: int, *, seed: int = 0, start: int = 0, sentences: int = 0) -> list[dict[str, Any]]:
    """``n`` prompt/response rows with id, model, route, template and a timestamp.

    ``sentences`` filler sentences (about 16 tokens each) follow each answer, to make outputs
    as long as real chat answers.
    """
    rng = random.Random(seed)
    rows = []
    for i in range(start, start + n):
        refusal = rng.random() < 0.2
        text = rng.choice(REFUSALS if refusal else ANSWERS)
        if sentences:
            text = " ".join([text, *(rng.choice(FILLER) for _ in range(sentences))])
        rows.append(
            {
                "id": f"r{i}",
                "prompt": f"Question {i}: {rng.choice(['how', 'why', 'what'])}?",
                "response": f"{text} (#{i})",
                "model": rng.choice(MODELS),
                "route": rng.choice(ROUTES),
                "template": f"t{i % 4}",
                "timestamp": 1767225600 + 3600 * (i % 72),  # 2026-01-01 and the two days after
            }
        )
    return rows


def write_jsonl(path: Path, rows: Iterable[object], *, bad_every: int = 0) -> Path:
    """Write rows as JSON Lines; with ``bad_every``, every so many lines is invalid JSON."""
    with path.open("w", encoding="utf-8") as fh:
        for i, row in enumerate(rows, start=1):
            if bad_every and i % bad_every == 0:
                fh.write('{"response": "unterminated\n')
            fh.write(json.dumps(row) + "\n")
    return path


def write_parquet(path: Path, rows: list[dict[str, Any]]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), path)
    return path
