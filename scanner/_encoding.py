"""Bounded-cost tokenization: long texts keep their head and tail, joined by a placeholder.

A refusal sits at the start of an answer, or at its end after a preamble, so the middle of a
long output is dropped before tokenizing: only two character windows are ever tokenized, and
the cost of a scan does not grow with the length of the output. The windows are cut from the
squeezed text (:mod:`._visible`), so whitespace or invisible padding cannot fill them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from tokenizers import Tokenizer

from ._text import PLACEHOLDER
from ._visible import visible_windows

__all__ = ["Encoded", "WindowedEncoder"]

#: Characters tokenized per window for each token of budget: generous for any script.
_CHARS_PER_TOKEN = 12


@dataclass(frozen=True)
class Encoded:
    """A padded batch, ready for a model."""

    input_ids: npt.NDArray[np.int64]
    attention_mask: npt.NDArray[np.int64]
    token_type_ids: npt.NDArray[np.int64]

    def as_dict(self) -> dict[str, npt.NDArray[np.int64]]:
        return {
            "input_ids": self.input_ids,
            "attention_mask": self.attention_mask,
            "token_type_ids": self.token_type_ids,
        }


class WindowedEncoder:
    """Tokenizes texts to at most ``max_tokens`` ids, special tokens included.

    A text whose tokens do not fit keeps its first ``head`` and last ``tail`` tokens with the
    placeholder's tokens between them, where ``head`` is ``head_fraction`` of the room left.
    The model reads the squeezed text (:func:`~._visible.squeeze`): runs of whitespace and
    invisible characters never take a window's room, wherever they sit in the text.
    The tokenizer passed in is copied, so its truncation and padding settings are untouched.
    Safe to share between threads: it holds no mutable state after construction.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        *,
        max_tokens: int,
        head_fraction: float = 0.75,
        placeholder: str = PLACEHOLDER,
    ) -> None:
        if not 0.0 <= head_fraction <= 1.0:
            raise ValueError(f"head_fraction must be in [0, 1], got {head_fraction}.")
        tok = Tokenizer.from_str(tokenizer.to_str())
        tok.no_truncation()
        tok.no_padding()
        self._tok = tok
        probe = tok.encode("a", add_special_tokens=True)
        plain = tok.encode("a", add_special_tokens=False).ids
        start = _find(probe.ids, plain)
        self._prefix = list(probe.ids[:start])
        self._suffix = list(probe.ids[start + len(plain) :])
        self._placeholder = list(tok.encode(" " + placeholder + " ", add_special_tokens=False).ids)
        room = max_tokens - len(self._prefix) - len(self._suffix)
        if room <= len(self._placeholder) + 2:
            raise ValueError(f"max_tokens={max_tokens} leaves no room for text.")
        self.max_tokens = max_tokens
        self._room = room
        self._head = round((room - len(self._placeholder)) * head_fraction)
        self._tail = room - len(self._placeholder) - self._head
        # Each window is sized to its own token budget: tokenizing more is wasted work.
        self._head_cut = self._head * _CHARS_PER_TOKEN
        self._tail_cut = self._tail * _CHARS_PER_TOKEN
        self._pad_id = _pad_id(tok)

    def encode(self, texts: Sequence[str]) -> Encoded:
        """Encode ``texts`` into one batch padded to its longest row."""
        segments: list[str] = []
        windowed: list[bool] = []
        for text in texts:
            head, tail = visible_windows(text, head=self._head_cut, tail=self._tail_cut)
            segments.append(head)
            if tail is not None:
                segments.append(tail)
            windowed.append(tail is not None)
        encodings = self._tok.encode_batch(segments, add_special_tokens=False)
        rows: list[list[int]] = []
        i = 0
        for long in windowed:
            if long:
                body = self._join(encodings[i].ids, encodings[i + 1].ids)
                i += 2
            else:
                ids = encodings[i].ids
                body = ids if len(ids) <= self._room else self._join(ids, ids)
                i += 1
            rows.append(self._prefix + body + self._suffix)
        width = max((len(r) for r in rows), default=0)
        input_ids = np.full((len(rows), width), self._pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for r, row in enumerate(rows):
            input_ids[r, : len(row)] = row
            mask[r, : len(row)] = 1
        return Encoded(input_ids, mask, np.zeros_like(input_ids))

    def count_tokens(self, text: str) -> int:
        """Number of ids :meth:`encode` produces for ``text`` (special tokens included)."""
        return int(self.encode([text]).attention_mask.sum())

    def _join(self, head: list[int], tail: list[int]) -> list[int]:
        # max(0, ...): a tail window with fewer tokens than its share keeps them all (a negative
        # start would keep only the last ``2 * len(tail) - self._tail`` of them).
        start = max(0, len(tail) - self._tail)
        return list(head[: self._head]) + self._placeholder + list(tail[start:])


def _find(haystack: Sequence[int], needle: Sequence[int]) -> int:
    for i in range(len(haystack) - len(needle) + 1):
        if list(haystack[i : i + len(needle)]) == list(needle):
            return i
    raise ValueError("The tokenizer's post-processor hides the text it wraps; cannot window it.")


def _pad_id(tok: Tokenizer) -> int:
    for name in ("[PAD]", "<pad>", "<|pad|>", "<unk>", "[UNK]"):
        token_id = tok.token_to_id(name)
        if token_id is not None:
            return int(token_id)
    return 0
