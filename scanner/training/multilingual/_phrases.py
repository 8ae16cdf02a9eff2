"""Refusal and ordinary-answer phrasings for the 19 languages besides English.

Every phrase was written for this project (Apache-2.0) and none is taken from the held-out
evaluation set (``tests/data/multilingual_eval.jsonl``). The generators in :mod:`._generate`
compose them into whole answers. Keys, per language:

- ``sorry``: openers that precede a refusal ("Lo siento, pero"); an opener that does not end a
  sentence is followed by the refusal with its first letter lowered.
- ``core``: refusal sentences with a ``{x}`` slot, filled from ``objs`` (what is declined).
- ``terse``: short refusals that stand alone. ``indirect``: declines without "I can't".
- ``capability``: "I can't browse / see images / call / remember" sentences.
- ``reasons`` and ``offers``: what follows a refusal (offers also end ordinary answers).
- ``but``: connectors that introduce a refusal after a preamble; ``empathy``: preambles.
- Hard negatives (ordinary answers): ``condolence``, ``apology`` + ``fix`` (an apology for a
  mistake and the correction, ``{n}`` a number), ``translate`` (frames with ``{en}`` and
  ``{xx}``: a requested translation of a refusal), ``said`` (quoted dialogue, ``{q}`` and
  ``{name}`` from ``names``), ``idioms`` ("can't wait"), ``rules`` (laws and house rules).
- Ordinary-answer pieces: ``sure`` (answer openers), ``yes`` (short answers), ``err`` (error
  messages in the language, for code).
"""

from __future__ import annotations

from ._phrases_a import PHRASES_A
from ._phrases_b import PHRASES_B
from ._phrases_c import PHRASES_C

__all__ = ["EN_REFUSALS", "LANGUAGES", "PHRASES", "UNSPACED"]

PHRASES: dict[str, dict[str, tuple[str, ...]]] = {**PHRASES_A, **PHRASES_B, **PHRASES_C}

#: The 20 languages of issue 17; English is the English model's, the rest are PHRASES'.
LANGUAGES = ("en", "zh", "es", "hi", "ar", "pt", "ru", "ja", "de", "fr", "ko", "it", "tr", "vi",
             "id", "pl", "nl", "fa", "th", "uk")  # fmt: skip

#: Scripts written without spaces between sentences.
UNSPACED = frozenset({"zh", "ja"})

#: English refusals that the translation frames quote.
EN_REFUSALS = (
    "I can't help you with that",
    "I'm sorry, but I can't do that",
    "I won't do it",
    "Sorry, I'm not able to come tomorrow",
    "I cannot answer that question",
    "Unfortunately, we can't accept returns after 30 days",
    "I'm afraid that's not possible",
)
