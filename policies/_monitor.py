"""GuardMonitor: a stream monitor whose scans follow a Guard's policy."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any

from norefusal._stream import DEFAULT_CHECKPOINTS, StreamBuffer
from norefusal._text import check_text

from ._engine import Effect, check_flow, could_become_allowlisted, sampled_in, skipped
from ._types import Candidate

if TYPE_CHECKING:
    from norefusal import ScanResult

    from ._guard import Guard

__all__ = ["GuardMonitor"]


class GuardMonitor:
    """Follows one streamed output, like :class:`~norefusal.StreamMonitor`; create it with
    :meth:`Guard.monitor`.

    The text so far is checked when it first reaches each checkpoint, and once more, whole, by
    :meth:`finish`; each check is a :meth:`Guard.check` without its event (allow-list,
    sampling, ``timeout_s`` and ``on_error`` apply). Pass a verdict to
    :meth:`Guard.stream_verdict` to decide and record. Sampling picks whole streams: the text
    at the first check decides whether this stream is scanned at all. While the text could
    still grow into an exact allow-listed message, no refusal verdict is returned before
    :meth:`finish` (regex entries apply to each text checked as it stands).
    :meth:`afeed` and :meth:`afinish` are the async twins.

    Attributes:
        verdict: the first refusal found by a checkpoint check, or ``None``.
        cleared: characters a checkpoint check has passed as not a refusal.
        scans: checks made so far.
    """

    def __init__(
        self, guard: Guard, prompt: str, *, checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS
    ) -> None:
        self._buffer = StreamBuffer(checkpoints)
        self._guard = guard
        self._prompt = check_text(prompt, "prompt")  # misuse fails here, not as a scan error
        self._final: ScanResult | None = None
        self._sampled: bool | None = None  # decided once per stream, at its first check
        self.verdict: ScanResult | None = None
        self.cleared = 0
        self.scans = 0

    @property
    def length(self) -> int:
        """Characters received so far."""
        return self._buffer.length

    @property
    def finished(self) -> bool:
        return self._final is not None

    @property
    def text(self) -> str:
        """The text received so far."""
        return self._buffer.text

    # One flow for feed and afeed, one for finish and afinish; the drivers do the I/O.

    def _feed_flow(self, delta: str | None) -> Generator[Effect, Any, ScanResult | None]:
        if self._final is not None:
            raise RuntimeError("This stream is finished; start a new monitor per stream.")
        if delta is not None and not isinstance(delta, str):
            raise TypeError(f"delta must be a string or None, got {type(delta).__name__}.")
        if not delta or not self._buffer.add(delta) or self.verdict is not None:
            return None
        result = yield from self._check()
        if result.is_refusal:
            if could_become_allowlisted(self._guard.policy, self.text):
                return None
            self.verdict = result
            return result
        self.cleared = self._buffer.length
        return None

    def _finish_flow(self) -> Generator[Effect, Any, ScanResult]:
        if self._final is None:
            final = yield from self._check()
            if not final.is_refusal:
                self.cleared = self._buffer.length
            self._final = final
        return self._final

    def _check(self) -> Generator[Effect, Any, ScanResult]:
        ctx = self._guard._context()
        text = self.text
        if self._sampled is None and text.strip():
            # Sample the stream, not each checkpoint: its first text decides for all of it.
            self._sampled = sampled_in(ctx, text)
        if self._sampled is False:
            return skipped(ctx, text)
        self.scans += 1
        candidate = [Candidate(text)]
        (result,) = yield from check_flow(ctx, self._prompt, candidate, count=False, sample=False)
        return result

    def feed(self, delta: str | None) -> ScanResult | None:
        """Add the next piece of the output; return a refusal verdict once, when found."""
        return self._guard._drive(self._feed_flow(delta))

    async def afeed(self, delta: str | None) -> ScanResult | None:
        """:meth:`feed` without blocking the event loop."""
        return await self._guard._adrive(self._feed_flow(delta))

    def finish(self) -> ScanResult:
        """Check the whole text once and return the final verdict (the same one if called again)."""
        return self._guard._drive(self._finish_flow())

    async def afinish(self) -> ScanResult:
        """:meth:`finish` without blocking the event loop."""
        return await self._guard._adrive(self._finish_flow())
