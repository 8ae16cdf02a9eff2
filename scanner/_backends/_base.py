"""The backend interface."""

from __future__ import annotations

import abc
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["Backend", "softmax_column"]


class Backend(abc.ABC):
    """Scores texts. Implementations are safe to call from many threads at once."""

    #: A short name for results and logs (the model or preset name).
    name: str
    #: Inputs per forward pass that run fastest on this backend (the scanner's default).
    batch_size: int = 32

    @abc.abstractmethod
    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        """Return P(refusal) for each text, in order, as one forward pass where possible."""


def softmax_column(
    logits: npt.NDArray[np.floating], column: int, temperature: float = 1.0
) -> npt.NDArray[np.float64]:
    """``softmax(logits / temperature)[:, column]``, computed stably in float64."""
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    out: npt.NDArray[np.float64] = e[:, column] / e.sum(axis=1)
    return out
