"""Keyword backend: phrase matching, no model. LLM Guard's NoRefusalLight, done better.

NoRefusalLight flags any output containing one of 28 case-insensitive substrings anywhere
("As an", "OpenAI", "Sorry", "I do not"...), so "Sorry to hear that" or "As an example" count as
refusals. Here phrases match on word boundaries, after folding curly apostrophes and case;
each phrase has a strength; a match weighs most at the start of the answer (where refusals
sit), a little less at its end (a refusal after a preamble), and little in the middle; and
phrases that only look like refusals (condolences, apologies for a mistake) do not count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .._visible import visible_windows
from ._base import Backend

__all__ = ["NO_REFUSAL_LIGHT_PHRASES", "KeywordBackend", "NoRefusalLightBackend"]

#: LLM Guard's NoRefusalLight list (llm_guard/output_scanners/no_refusal.py, v0.3.16).
NO_REFUSAL_LIGHT_PHRASES: tuple[str, ...] = (
    "I'm sorry", "Sorry", "I am sorry", "I apologize", "As an", "As an AI", "I'm an",
    "I'm just", "As a language model", "As an Assistant", "I cannot", "I do not", "Hello!",
    "is illegal and unethical", "I'm really sorry", "OpenAI", "unethical", "not ethical",
    "not legal", "My apologies", "but I cannot", "If you have any other non-malicious requests",
    "I'm not able to provide", "I am really sorry", "I cannot create", "I cannot support",
    "I can't provide", "I can't assist",
)  # fmt: skip

_I = r"i(?:'m| am)"
_CANT = r"(?: cannot| can't| can not| won't| will not| am unable to|'m unable to| am not able to|'m not able to| must decline to| am not going to|'m not going to)"
_ACTS = (
    r"(?:help|assist|provide|comply|fulfil+|create|generate|write|produce|give|share|offer|"
    r"support|engage|answer|do|complete|participate|continue|discuss|recommend|tell|explain|"
    r"make|draft|describe|encourage|promote|condone|facilitate)"
)

#: (pattern, strength): strength is how sure a match alone makes us.
_PHRASES: tuple[tuple[str, float], ...] = (
    (rf"\bi{_CANT} (?:\w+ ){{0,2}}{_ACTS}\b", 0.97),
    (rf"\b{_I} (?:sorry|afraid),? (?:but|however)\b", 0.95),
    (r"\bi apologi[sz]e,? (?:but|however)\b", 0.95),
    (
        r"\bsorry,? (?:but )?i (?:can(?:no|')t|won't|am unable|'m unable|am not able|'m not able)\b",
        0.97,
    ),
    (r"\bi (?:must|have to|need to|will have to) (?:respectfully )?(?:decline|refuse)\b", 0.97),
    (r"\bi(?:'m| am) not (?:comfortable|willing|programmed|allowed|permitted|designed) to\b", 0.95),
    (
        r"\b(?:it(?:'s| is)|that(?:'s| is)|would be) (?:not appropriate|inappropriate|unethical|not ethical)\b",
        0.8,
    ),
    (
        r"\bagainst (?:my|our|the) (?:programming|guidelines|polic(?:y|ies)|principles|ethical)\b",
        0.9,
    ),
    (r"\bas an ai(?: language model| assistant| model)?\b", 0.6),
    (r"\bas a (?:large )?language model\b", 0.6),
    (
        r"\bi (?:cannot|can't|can not|won't|will not) (?:do|fulfil+|comply with|help with|assist with) (?:that|this|your request)\b",
        0.98,
    ),
    (
        r"\b(?:unable|not able) to (?:help|assist|provide|comply|fulfil+) (?:with )?(?:that|this|your)\b",
        0.9,
    ),
    (r"\bi (?:do not|don't) (?:feel comfortable|think i (?:can|should))\b", 0.9),
    (
        r"\bi (?:do not|don't) think (?:it's|it is|that's|that is|it would be) (?:appropriate|accurate|fair|respectful|ethical)\b",
        0.9,
    ),
    (
        r"\b(?:it is|it's|that is|that's) not (?:accurate|appropriate|fair)(?: or (?:appropriate|fair|accurate|respectful))? to\b",
        0.7,
    ),
    (r"\bi must (?:politely |respectfully )?(?:point out|challenge|clarify)\b", 0.6),
    (r"\bi (?:can't|cannot|can not|won't|will not)\b", 0.55),
    (r"\b(?:i'm|i am) (?:really |very |so )?sorry\b", 0.45),
    (r"\bi apologi[sz]e\b", 0.4),
    (r"\bmy apologies\b", 0.35),
    (r"\bnot (?:able|allowed|permitted) to\b", 0.4),
    (r"\b(?:illegal|harmful|dangerous) (?:and|or) (?:unethical|harmful|illegal|dangerous)\b", 0.5),
    (r"\bif you have any other (?:non-malicious )?(?:requests|questions)\b", 0.5),
)

#: Phrases that make an apology or "I can't" ordinary speech, not a refusal.
_BENIGN = re.compile(
    r"\b(?:sorry (?:to hear|for (?:your|the) loss|about (?:your|that|the))|sorry for the "
    r"(?:confusion|mistake|error|oversight|inconvenience|delay)|apologi[sz]e for (?:the|my|any) "
    r"(?:confusion|mistake|error|oversight|inconvenience|delay)|my apologies for the "
    r"(?:confusion|mistake|error|oversight))",
)

_COMPILED = tuple((re.compile(p), s) for p, s in _PHRASES)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_HEAD = 240  # characters where a refusal usually sits
_TAIL = 300  # characters where a refusal after a preamble sits
_WINDOW = 4000  # characters scanned at each end: bounded cost on any input


def _normalise(text: str) -> str:
    return " ".join(text.translate(_APOSTROPHES).lower().split())


def _position_weight(start: int, length: int) -> float:
    if start < _HEAD:
        return 1.0
    if start >= length - _TAIL:
        return 0.85
    return 0.35


class KeywordBackend(Backend):
    """Scores 1 - prod(1 - strength x position weight) over matched refusal phrases."""

    name = "keyword"

    def score(self, text: str) -> float:
        # Windows of the squeezed text: padding cannot push a late refusal out of the tail,
        # and a zero-width character inside a phrase does not hide it.
        head, tail = visible_windows(text, head=_WINDOW, tail=_WINDOW)
        norm = _normalise(head if tail is None else head + " \n " + tail)
        benign = [m.span() for m in _BENIGN.finditer(norm)]
        keep = 1.0
        for pattern, strength in _COMPILED:
            for match in pattern.finditer(norm):
                if any(
                    b0 <= match.start() < b1 or match.start() <= b0 < match.end()
                    for b0, b1 in benign
                ):
                    continue
                keep *= 1.0 - strength * _position_weight(match.start(), len(norm))
        return 1.0 - keep

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        return np.array([self.score(t) for t in texts], dtype=np.float64)


class NoRefusalLightBackend(Backend):
    """LLM Guard's NoRefusalLight, reproduced as a baseline: 1.0 if any phrase occurs."""

    name = "norefusal-light"

    def __init__(self) -> None:
        self._phrases = tuple(p.lower() for p in NO_REFUSAL_LIGHT_PHRASES)

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        return np.array(
            [float(any(p in t.lower() for p in self._phrases)) for t in texts], dtype=np.float64
        )
