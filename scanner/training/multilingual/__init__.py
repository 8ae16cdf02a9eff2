"""Training recipe of the multilingual refusal model (issue 17).

``python -m norefusal.training.multilingual --ud DIR --data DIR --out DIR``. Needs the ``train``
extra and, read from a directory given on the command line, the Universal Dependencies
treebanks listed in :data:`TREEBANKS` (see ``scanner/models/multilingual/MODEL_CARD.md``).
"""

from __future__ import annotations

from ._generate import TREEBANKS, Sample, compliance, generate, read_treebanks, refusal
from ._phrases import LANGUAGES, PHRASES
from ._train import Recipe, main

__all__ = [
    "LANGUAGES",
    "PHRASES",
    "TREEBANKS",
    "Recipe",
    "Sample",
    "compliance",
    "generate",
    "main",
    "read_treebanks",
    "refusal",
]
