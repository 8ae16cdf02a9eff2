"""Routing backend: English text to the English model, every other language to the multilingual one.

The English model's scores on English text are passed through untouched, so whatever English
model ships keeps its figures exactly. The multilingual model's scores are mapped onto the
English model's scale: a piecewise-linear, increasing map that sends the multilingual model's
calibrated threshold to the English model's, so one threshold (the scanner's) decides for both
and a score above it means the same thing whichever model produced it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from .._language import is_english
from ._base import Backend

__all__ = ["RoutedBackend", "align_threshold"]


def align_threshold(
    scores: npt.NDArray[np.float64], *, source: float, target: float
) -> npt.NDArray[np.float64]:
    """Map scores so that ``source`` goes to ``target``, 0 to 0 and 1 to 1, linearly between."""
    below = scores * (target / source)
    above = target + (scores - source) * ((1.0 - target) / (1.0 - source))
    out: npt.NDArray[np.float64] = np.where(scores <= source, below, above)
    return out


class RoutedBackend(Backend):
    """Scores each text with the English model or the multilingual model, by its language.

    Args:
        english: the English model's backend; its scores are returned unchanged.
        multilingual: the multilingual model's backend.
        english_threshold: the English model's calibrated threshold.
        multilingual_threshold: the multilingual model's calibrated threshold.
        route: decides which texts the English model reads (:func:`norefusal._language.is_english`).
    """

    def __init__(
        self,
        english: Backend,
        multilingual: Backend,
        *,
        english_threshold: float,
        multilingual_threshold: float,
        route: Callable[[str], bool] = is_english,
    ) -> None:
        self.english = english
        self.multilingual = multilingual
        self._english_threshold = english_threshold
        self._multilingual_threshold = multilingual_threshold
        self._route = route
        self.name = english.name
        self.batch_size = english.batch_size

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        scores = np.zeros(len(texts), dtype=np.float64)
        english = [i for i, t in enumerate(texts) if self._route(t)]
        other = sorted(set(range(len(texts))) - set(english))
        if english:
            scores[english] = self.english.predict([texts[i] for i in english])
        if other:
            raw = np.asarray(self.multilingual.predict([texts[i] for i in other]), dtype=float)
            scores[other] = align_threshold(
                raw, source=self._multilingual_threshold, target=self._english_threshold
            )
        return scores
