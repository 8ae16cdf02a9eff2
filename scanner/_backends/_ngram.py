"""Character n-gram backend: the multilingual model, hashed n-grams into a small network (numpy).

Characters need no word boundaries, so one model reads Chinese, Japanese and Thai as well as
the languages written with spaces, and it needs no tokenizer vocabulary of 250,000 pieces.
A text is normalised (NFKC, case folded, digits to 0), cut to its head and tail (the cost of a
scan does not grow with the output), its character 1- to 5-grams are hashed into buckets, and
the embeddings of its distinct buckets are summed (divided by the square root of their number)
into a two-layer network. The training recipe
(``norefusal.training.multilingual``) calls the same :func:`ngram_ids`, so a model is always fed
exactly what it was trained on.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._artifact import CONFIG_NAME, verify_files
from .._errors import ModelLoadError
from .._visible import visible_windows
from ._base import Backend, softmax_column

__all__ = ["NgramBackend", "NgramConfig", "ngram_ids", "normalise", "read_ngram_config"]

KIND = "char-ngram"
_FNV_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0xFF51AFD7ED558CCD)
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_DIGITS = str.maketrans({c: "0" for c in "123456789"})


@dataclass(frozen=True)
class NgramConfig:
    """What ``norefusal.json`` says about a character n-gram model directory."""

    name: str
    threshold: float
    temperature: float
    ngram_min: int
    ngram_max: int
    buckets: int
    head_chars: int
    tail_chars: int
    refusal_index: int = 1
    files: dict[str, str] = field(default_factory=dict)


def read_ngram_config(directory: Path) -> NgramConfig:
    """Parse ``directory/norefusal.json`` of a ``char-ngram`` model.

    Raises:
        ModelLoadError: the file is missing, malformed, or describes another kind of model.
    """
    path = directory / CONFIG_NAME
    try:
        raw: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Cannot read {path}: {exc}.") from exc
    if not isinstance(raw, dict) or raw.get("kind") != KIND:
        raise ModelLoadError(f"{path} does not describe a {KIND!r} model.")
    try:
        labels = list(raw["labels"])
        config = NgramConfig(
            name=str(raw["name"]),
            threshold=float(raw["threshold"]),
            temperature=float(raw.get("temperature", 1.0)),
            ngram_min=int(raw["ngram_min"]),
            ngram_max=int(raw["ngram_max"]),
            buckets=int(raw["buckets"]),
            head_chars=int(raw["head_chars"]),
            tail_chars=int(raw["tail_chars"]),
            refusal_index=labels.index(raw.get("refusal_label", "refusal")),
            files={str(k): str(v) for k, v in dict(raw.get("files", {})).items()},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelLoadError(f"{path}: bad or missing field ({exc!r}).") from exc
    if not (
        0.0 < config.threshold < 1.0
        and config.temperature > 0
        and 1 <= config.ngram_min <= config.ngram_max <= 8
        and config.buckets > 0
        and config.head_chars > 0
        and config.tail_chars >= 0
    ):
        raise ModelLoadError(f"{path}: a value is out of range.")
    return config


def normalise(text: str, *, head_chars: int, tail_chars: int) -> str:
    """NFKC, case folding, one space for any run of whitespace, digits as 0; head and tail only.

    A text longer than ``head_chars + tail_chars`` visible characters keeps its first
    ``head_chars`` and last ``tail_chars`` joined by `` … ``, so the cost is bounded on any input.
    """
    # Windows of the squeezed text (norefusal._visible): padding and zero-width characters can
    # neither fill a window nor split a phrase.
    head, tail = visible_windows(text, head=head_chars, tail=tail_chars)
    text = head if tail is None else head + " … " + tail
    text = unicodedata.normalize("NFKC", text).translate(_APOSTROPHES).casefold()
    return " ".join(text.translate(_DIGITS).split())


def ngram_ids(text: str, config: NgramConfig) -> npt.NDArray[np.int64]:
    """The distinct bucket ids of the character n-grams of ``text`` (after :func:`normalise`).

    The hash is FNV-1a over code points with a final mix, computed with numpy: stable across
    processes and platforms (unlike Python's ``hash``), and vectorised over positions.
    """
    norm = " " + normalise(text, head_chars=config.head_chars, tail_chars=config.tail_chars) + " "
    points = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    parts = []
    for n in range(config.ngram_min, config.ngram_max + 1):
        count = len(points) - n + 1
        if count <= 0:
            break
        h = np.full(count, np.uint64(0xCBF29CE484222325) ^ np.uint64(n), dtype=np.uint64)
        for k in range(n):
            h = (h ^ points[k : k + count]) * _FNV_PRIME
        parts.append(h)
    hashed = np.concatenate(parts)
    hashed ^= hashed >> np.uint64(33)
    hashed *= _MIX
    hashed ^= hashed >> np.uint64(29)
    return np.unique(hashed % np.uint64(config.buckets)).astype(np.int64)


class NgramBackend(Backend):
    """Runs ``model.npz`` (int8 bucket embeddings and a small network) from its directory.

    Pure numpy, one text at a time (scores never depend on the batch). Arrays are loaded with
    ``allow_pickle=False``: the file can hold numbers only.
    """

    batch_size = 16

    def __init__(self, directory: Path, *, verify: bool = True) -> None:
        config = read_ngram_config(directory)
        path = directory / "model.npz"
        if not path.is_file():
            raise ModelLoadError(f"{path} is missing from the n-gram model directory.")
        if verify:
            verify_files(directory, config.files)
        try:
            with np.load(path, allow_pickle=False) as arrays:
                self._emb = np.asarray(arrays["emb_q"], dtype=np.int8)
                self._scale = np.asarray(arrays["emb_scale"], dtype=np.float32)
                self._w1 = np.asarray(arrays["w1"], dtype=np.float32)
                self._b1 = np.asarray(arrays["b1"], dtype=np.float32)
                self._w2 = np.asarray(arrays["w2"], dtype=np.float32)
                self._b2 = np.asarray(arrays["b2"], dtype=np.float32)
        except (OSError, KeyError, ValueError) as exc:
            raise ModelLoadError(f"Could not load {path}: {exc}") from exc
        dim = self._emb.shape[1] if self._emb.ndim == 2 else -1
        if (
            self._emb.shape[0] != config.buckets
            or self._scale.shape != (config.buckets,)
            or self._w1.shape[0] != dim
            or self._w2.shape != (self._w1.shape[1], 2)
        ):
            raise ModelLoadError(f"{path}: array shapes do not match {CONFIG_NAME}.")
        self.config = config
        self.name = config.name

    def logits(self, text: str) -> npt.NDArray[np.float32]:
        """The network's two logits for one text."""
        ids = ngram_ids(text, self.config)
        vectors = self._emb[ids].astype(np.float32) * self._scale[ids, None]
        pooled = vectors.sum(axis=0) / np.float32(np.sqrt(len(ids)))
        hidden = np.maximum(pooled @ self._w1 + self._b1, 0.0)
        out: npt.NDArray[np.float32] = hidden @ self._w2 + self._b2
        return out

    def predict(self, texts: Sequence[str]) -> npt.NDArray[np.float64]:
        if not texts:
            return np.zeros(0, dtype=np.float64)
        logits = np.stack([self.logits(t) for t in texts])
        return softmax_column(logits, self.config.refusal_index, self.config.temperature)
