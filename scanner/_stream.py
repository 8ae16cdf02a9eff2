"""Per-stream refusal monitoring with a bounded number of classifier calls."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ._result import ScanResult
from ._text import check_text

__all__ = ["DEFAULT_CHECKPOINTS", "StreamBuffer", "StreamMonitor"]

#: Characters received at which the text so far is scanned: refusals sit at the start.
DEFAULT_CHECKPOINTS: tuple[int, ...] = (40, 160, 480)


class _Scans(Protocol):
    def scan(self, prompt: str | None, output: str | None) -> ScanResult: ...


class StreamBuffer:
    """The text of one stream and its checkpoint schedule; it scans nothing itself.

    Shared by :class:`StreamMonitor` and the policies' ``GuardMonitor``, which differ only in
    how a checkpoint is checked. Appending is O(len(delta)); the text is joined lazily.
    """

    def __init__(self, checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS) -> None:
        if any(not isinstance(c, int) or c < 1 for c in checkpoints):
            raise ValueError(f"checkpoints must be positive integers, got {checkpoints!r}.")
        self._checkpoints = sorted(set(checkpoints))
        self._parts: list[str] = []
        self._next = 0
        self.length = 0

    @property
    def text(self) -> str:
        """The text received so far."""
        if len(self._parts) > 1:
            self._parts[:] = ["".join(self._parts)]
        return self._parts[0] if self._parts else ""

    def add(self, delta: str) -> bool:
        """Append ``delta``; true when the text just reached a checkpoint not reached before."""
        self._parts.append(delta)
        self.length += len(delta)
        due = False
        while self._next < len(self._checkpoints) and self._checkpoints[self._next] <= self.length:
            self._next += 1
            due = True
        return due


class StreamMonitor:
    """Follows one streamed output; create it with :meth:`NoRefusalScanner.stream`.

    The text so far is scanned when it first reaches each checkpoint (a few hundred
    characters at most) and once more, whole, by :meth:`finish`. So a stream costs at most
    ``len(checkpoints) + 1`` classifier calls whatever its length, each bounded by the
    scanner's head-and-tail window, and :meth:`feed` costs O(len(delta)) between checkpoints.

    A monitor belongs to one stream and is not shared: all per-stream state lives here, never
    on the scanner, so one scanner serves any number of concurrent streams.

    Attributes:
        verdict: the first refusal found by a checkpoint scan, or ``None``.
        cleared: characters of the text that a checkpoint scan has passed as not a refusal.
        scans: classifier calls made so far.
    """

    def __init__(
        self,
        scanner: _Scans,
        prompt: str,
        *,
        checkpoints: Sequence[int] = DEFAULT_CHECKPOINTS,
    ) -> None:
        self._buffer = StreamBuffer(checkpoints)
        self._scanner = scanner
        self._prompt = prompt
        self._final: ScanResult | None = None
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

    def feed(self, delta: str | None) -> ScanResult | None:
        """Add the next piece of the output; return a refusal verdict as soon as one is found.

        Returns the verdict once, on the call that found it, and ``None`` otherwise.
        """
        if self._final is not None:
            raise RuntimeError("This stream is finished; start a new monitor per stream.")
        # Not cleaned here: the scanner cleans what the model reads, and the text stays as sent
        # (a surrogate pair split across two deltas is whole again once joined).
        delta = check_text(delta, "delta")
        if not delta or not self._buffer.add(delta) or self.verdict is not None:
            return None
        result = self._scan()
        if result.is_refusal:
            self.verdict = result
            return result
        self.cleared = self._buffer.length
        return None

    def finish(self) -> ScanResult:
        """Scan the whole text once (head and tail of a long one) and return the final verdict.

        Calling it again returns the same result without scanning again.
        """
        if self._final is None:
            self._final = self._scan()
            if not self._final.is_refusal:
                self.cleared = self._buffer.length
        return self._final

    def _scan(self) -> ScanResult:
        self.scans += 1
        return self._scanner.scan(self._prompt, self.text)
