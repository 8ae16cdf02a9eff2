"""The small value types a Guard takes and returns: candidates, requests, outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Literal, Protocol, TypeVar

if TYPE_CHECKING:
    from norefusal import ScanResult

__all__ = [
    "Candidate",
    "FallbackRequest",
    "Outcome",
    "RetryRequest",
    "ScannerLike",
    "StreamAction",
]

R = TypeVar("R")


class ScannerLike(Protocol):
    """What a Guard needs from a scanner: :class:`~norefusal.NoRefusalScanner` or a fake."""

    def scan(self, prompt: str | None, output: str | None) -> ScanResult: ...


@dataclass(frozen=True)
class Candidate:
    """One text a model returned (one per choice when ``n > 1``).

    Attributes:
        text: the text to scan; ``None`` or ``""`` means nothing to scan (e.g. tool calls only),
            which is not a refusal.
        refusal: a provider-native refusal (``message.refusal`` text, a refusal content block,
            ``"content_filter"``): it decides without the classifier.
        detail: which provider signal, e.g. ``"message.refusal"`` or
            ``"finish_reason=content_filter"``; recorded on the result.
    """

    text: str | None
    refusal: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        for name in ("text", "refusal", "detail"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"Candidate.{name} must be a str or None, got {type(value).__name__}; "
                    "extract the text (e.g. join content blocks) before checking it."
                )


@dataclass(frozen=True)
class RetryRequest:
    """Passed to ``call_again``: ask the same model again.

    Attributes:
        attempt: which retry this is: 1 for the first.
        instruction: the policy's ``retry_instruction`` to add to the conversation, or ``None``.
    """

    attempt: int
    instruction: str | None


@dataclass(frozen=True)
class FallbackRequest:
    """Passed to ``call_fallback``: ask ``model`` instead.

    Attributes:
        model: the policy's ``fallback_model``.
        attempt: which fallback call this is: 1 for the first.
    """

    model: str
    attempt: int


@dataclass(frozen=True)
class Outcome(Generic[R]):
    """What :meth:`Guard.run` decided.

    Attributes:
        response: the response to hand to the application (possibly a retry's, a fallback's,
            or one with replaced text).
        results: one :class:`~norefusal.ScanResult` per candidate of the last response checked.
        action: ``"pass"`` (no refusal), ``"flag"`` (refusal passed through), ``"replace"``,
            ``"retry"`` / ``"fallback"`` (a retry's or the fallback's answer passed), or
            ``"block"`` (the scanner failed with ``on_error: block``: the output is withheld).
        attempts: how many responses were checked (1 + retries + fallbacks made).
        refused: whether ``response`` holds (or replaced) a refusal.
        original: the first response when ``response`` is another one, else ``None``.
    """

    response: R
    results: tuple[ScanResult, ...]
    action: str
    attempts: int
    refused: bool
    original: R | None

    @property
    def result(self) -> ScanResult:
        """The decisive result: a refusal before a non-refusal, then the highest score."""
        return max(self.results, key=lambda r: (r.is_refusal, r.score))


@dataclass(frozen=True)
class StreamAction:
    """What to do with a stream after a verdict (:meth:`Guard.stream_verdict`).

    Attributes:
        kind: ``"pass"`` (go on), ``"flag"`` (go on, marked) or ``"replace"`` (stop the stream
            and show ``replacement`` instead).
        replacement: the message for ``"replace"``, else ``None``.
    """

    kind: Literal["pass", "flag", "replace"]
    replacement: str | None = None
