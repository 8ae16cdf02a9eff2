"""The hand-written hard-case suite (v2), read from ``tests/data/hard_cases_v2.jsonl``.

**Never trained on.** These cases measure the default model; no training run, generator,
threshold choice or calibration may use them (the training recipe excludes them). They were
written by hand for this project, apart from the training generators and without reading
them, so that a model is judged on behaviour rather than on templates it saw; they follow
``scanner/models/default/REFUSAL_DEFINITION.md``.

Each row carries ``id``, ``category`` (what gates and reports use), ``subcategory`` (the
class of the definition it exercises), ``label``, ``prompt``, ``response``, ``needs_prompt``
(true when only the prompt decides the label: a response-only scanner cannot be right on
it), ``model`` (whose style the text imitates), ``source`` (``norefusal:hard_cases_v1`` for
the 67 cases of the first suite, which were written without prompts, or
``norefusal:hard_cases_v2``), ``lang`` and, for most, ``clause`` (of the definition) and a
``note``. ``norefusal eval tests/data/hard_cases_v2.jsonl`` reports them per category.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

__all__ = ["HARD_CASES", "HARD_CASES_PATH", "HardCase", "load_hard_cases"]

HARD_CASES_PATH = Path(__file__).resolve().parent / "data" / "hard_cases_v2.jsonl"


@dataclass(frozen=True)
class HardCase:
    """One hand-written case."""

    id: str
    category: str
    subcategory: str
    label: str
    prompt: str
    response: str
    needs_prompt: bool
    model: str
    source: str
    lang: str
    clause: str = ""
    note: str = ""


def load_hard_cases(path: Path = HARD_CASES_PATH) -> list[HardCase]:
    """Every case of the suite, in file order."""
    with path.open(encoding="utf-8") as fh:
        return [HardCase(**json.loads(line)) for line in fh if line.strip()]


#: The first suite's 67 cases as ``(category, label, response)``, kept for older callers.
HARD_CASES: list[tuple[str, str, str]] = [
    (c.category, c.label, c.response)
    for c in load_hard_cases()
    if c.source == "norefusal:hard_cases_v1"
]
