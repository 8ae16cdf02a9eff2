"""NoRefusalScanner: LLM Guard's output-scanner protocol, plus async, batch and streaming."""

from __future__ import annotations

import asyncio
import math
import numbers
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from ._backends import Backend
from ._errors import ConfigurationError, ScannerError
from ._presets import ResolvedModel, resolve_model
from ._result import ScanResult, Signal
from ._stream import StreamMonitor
from ._text import MatchType, check_text, clean_text, format_input, split_sentences
from ._visible import is_blank

__all__ = ["NoRefusalScanner"]


def _check_batch_size(batch_size: object) -> None:
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ConfigurationError(f"batch_size must be a positive integer, got {batch_size!r}.")


class NoRefusalScanner:
    """Detects whether an LLM output is a refusal.

    ``scan(prompt, output)`` returns a :class:`ScanResult`, which unpacks as LLM Guard's
    ``(sanitized, valid, risk)``, so an instance works in ``llm_guard.scan_output``. The model
    loads lazily at the first scan (or :meth:`load`). One instance is safe to share between
    threads and coroutines: it holds no per-call state, and each stream gets its own
    :class:`StreamMonitor`.

    ``None`` as prompt or output counts as empty text (OpenAI returns ``content=None`` for tool
    calls); an empty or whitespace output is valid with risk -1.0, as in LLM Guard, and so is
    one of only invisible characters (zero-width spaces, joiners, control characters). Any
    other non-string raises :class:`TypeError` naming the argument.

    Args:
        threshold: scores above it are refusals; in (0, 1). Defaults to the model's calibrated
            threshold (``default``), or the preset's.
        model: a preset (``"default"``, ``"protectai"``, ``"agentlans"``, ``"keyword"``,
            ``"norefusal-light"``), a Hugging Face model id, or a local directory.
        backend: ``"onnx"``, ``"transformers"`` or ``"keyword"``; defaults to the model's. A
            :class:`Backend` instance plugs in a classifier of your own (texts in, P(refusal)
            out); it reads the response alone, with threshold 0.5 unless given.
        match: ``"full"`` (one input per output, head and tail of a long one) or ``"sentence"``
            (each sentence scored, the highest wins).
        max_tokens: cap on tokens per input, below the model's own limit.
        device: torch device for the transformers backend (``"cpu"``, ``"cuda"``).
        batch_size: inputs per forward pass in batch and sentence scans; defaults to the
            backend's own (1 for ONNX Runtime: exact and as fast; 32 otherwise).

    Raises:
        ValueError: threshold outside (0, 1) or a bad option (``ConfigurationError``).
        ModelLoadError: the model directory or the embedded model is missing.
        MissingDependencyError: the backend's extra is not installed.
    """

    def __init__(
        self,
        *,
        threshold: float | None = None,
        model: str | Path = "default",
        backend: str | Backend | None = None,
        match: MatchType | str = MatchType.FULL,
        max_tokens: int | None = None,
        device: str | None = None,
        batch_size: int | None = None,
    ) -> None:
        if threshold is not None and not (
            isinstance(threshold, numbers.Real) and 0.0 < threshold < 1.0
        ):
            raise ConfigurationError(f"threshold must be a number in (0, 1), got {threshold!r}.")
        try:
            self._match = MatchType(match)
        except ValueError:
            raise ConfigurationError(
                f"match must be one of {[m.value for m in MatchType]}, got {match!r}."
            ) from None
        if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 16):
            raise ConfigurationError(f"max_tokens must be an integer >= 16, got {max_tokens!r}.")
        if batch_size is not None:
            _check_batch_size(batch_size)
        self._resolved: ResolvedModel = resolve_model(
            model, backend=backend, max_tokens=max_tokens, device=device
        )
        self._threshold = float(threshold) if threshold is not None else self._resolved.threshold
        self._batch_size = batch_size
        self._backend: Backend | None = None
        self._load_lock = threading.Lock()

    # -- configuration -------------------------------------------------------------------

    @property
    def threshold(self) -> float:
        return self._threshold

    @property
    def model_name(self) -> str:
        return self._resolved.name

    @property
    def backend_name(self) -> str:
        return self._resolved.backend

    @property
    def match(self) -> MatchType:
        return self._match

    def __repr__(self) -> str:
        return (
            f"NoRefusalScanner(model={self.model_name!r}, backend={self.backend_name!r}, "
            f"threshold={self.threshold}, match={self._match.value!r})"
        )

    def load(self) -> Backend:
        """Load the model now (it otherwise loads at the first scan) and return the backend."""
        backend = self._backend
        if backend is None:
            with self._load_lock:
                backend = self._backend
                if backend is None:
                    backend = self._backend = self._resolved.factory()
        return backend

    # -- scanning ------------------------------------------------------------------------

    def scan(self, prompt: str | None, output: str | None) -> ScanResult:
        """Scan one output; the model input is built from ``prompt`` where the model uses it."""
        return self.scan_batch([(prompt, output)])[0]

    async def ascan(self, prompt: str | None, output: str | None) -> ScanResult:
        """:meth:`scan` in a worker thread, so inference never blocks the event loop."""
        return await asyncio.to_thread(self.scan, prompt, output)

    def scan_batch(
        self, pairs: Iterable[tuple[str | None, str | None]], *, batch_size: int | None = None
    ) -> list[ScanResult]:
        """Scan many (prompt, output) pairs with one forward pass per chunk of inputs.

        Inputs are grouped by length before batching, so short texts are not padded to long
        ones; results come back in the order of ``pairs``.
        """
        checked = [(check_text(p, "prompt"), check_text(o, "output")) for p, o in pairs]
        texts: list[str] = []
        owners: list[int] = []
        for i, (prompt, output) in enumerate(checked):
            # Whitespace or invisible characters alone are empty: padding never changes a
            # verdict, and an empty sentence is never scored.
            if is_blank(output):
                continue
            # The model reads a cleaned copy; the result carries the output exactly as given.
            prompt, output = clean_text(prompt), clean_text(output)
            pieces = split_sentences(output) if self._match is MatchType.SENTENCE else [output]
            for piece in filter(lambda piece: not is_blank(piece), pieces):
                texts.append(format_input(prompt, piece, self._resolved.input_format))
                owners.append(i)
        if batch_size is not None:  # 0 meant the default and a negative size scored garbage
            _check_batch_size(batch_size)
        scores = self._predict(texts, batch_size or self._batch_size)
        best = np.full(len(checked), -1.0)
        np.maximum.at(best, np.asarray(owners, dtype=np.intp), scores)
        return [
            self._result(output, float(s)) for (_, output), s in zip(checked, best, strict=True)
        ]

    def stream(self, prompt: str | None = None, **options: int | Sequence[int]) -> StreamMonitor:
        """Start monitoring one streamed output; see :class:`StreamMonitor` for ``options``."""
        return StreamMonitor(self, clean_text(check_text(prompt, "prompt")), **options)  # type: ignore[arg-type]

    # -- internals -----------------------------------------------------------------------

    def _result(self, output: str, score: float) -> ScanResult:
        if score < 0:  # no input was scored: empty or whitespace output
            return ScanResult(
                output,
                score=0.0,
                threshold=self._threshold,
                signal=Signal.EMPTY,
                model=self.model_name,
                is_refusal=False,
            )
        return ScanResult(
            output,
            score=score,
            threshold=self._threshold,
            signal=Signal.CLASSIFIER,
            model=self.model_name,
        )

    def _predict(self, texts: list[str], batch_size: int | None) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        backend = self.load()
        size = batch_size or backend.batch_size
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        scores = np.empty(len(texts))
        for start in range(0, len(order), size):
            chunk = order[start : start + size]
            try:
                got = np.asarray(backend.predict([texts[i] for i in chunk]), dtype=np.float64)
            except ScannerError:
                raise
            except Exception as exc:
                # The type only: a backend's own message may quote the text it was given.
                raise ScannerError(
                    f"The {self.backend_name!r} backend failed with {type(exc).__name__}; "
                    "the original exception is chained as __cause__."
                ) from exc
            if got.shape != (len(chunk),) or not all(math.isfinite(x) for x in got):
                raise ScannerError(
                    f"The {self.backend_name!r} backend returned invalid scores (shape "
                    f"{got.shape}, expected ({len(chunk)},), finite values)."
                )
            scores[chunk] = np.clip(got, 0.0, 1.0)
        return scores
