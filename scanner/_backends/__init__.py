"""Classifier backends: texts in, P(refusal) out. They know nothing of prompts or thresholds.

A backend name resolves lazily to its module, so an extra that is not installed is only
needed when its backend is asked for.
"""

from __future__ import annotations

from ._base import Backend

__all__ = ["BACKENDS", "Backend"]

#: Backend names and the extra each one needs (``None``: the core install has it).
BACKENDS: dict[str, str | None] = {
    "onnx": None,
    "transformers": "transformers",
    "keyword": None,
}
