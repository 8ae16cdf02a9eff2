"""Decision events, their logging, and the counters a Guard keeps."""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

__all__ = ["DecisionEvent", "Metrics", "logger"]

#: Every decision is logged here: DEBUG for passes and checks, INFO for actions on a refusal,
#: WARNING for scanner errors. The structured event is in ``record.norefusal``.
logger = logging.getLogger("norefusal.policies")


@dataclass(frozen=True)
class DecisionEvent:
    """One decision of a :class:`~norefusal.policies.Guard`, for logs, hooks and metrics.

    Never holds prompt or output text unless the policy sets ``log_text``.

    Attributes:
        policy: the policy's name.
        action: ``"check"`` (a bare check), or what was done: ``"pass"``, ``"flag"``,
            ``"raise"``, ``"replace"``, ``"retry"``, ``"fallback"``, ``"block"``.
        stage: ``"check"``, ``"run"`` (a whole response) or ``"stream"``.
        score: the decisive score in [0, 1].
        is_refusal: whether the decisive result is a refusal.
        signal: what decided the decisive result (``"classifier"``, ``"provider"``, ...).
        detail: the decisive result's detail (e.g. ``"message.refusal"``), if any.
        latency_ms: time spent checking for this decision, in milliseconds.
        attempt: which response was decided on: 1 the original, 2 the next one, ...
        model: the scanner model that scored the text.
        candidates: how many candidates the response held.
        refused: how many of them were refusals.
        prompt: the prompt, only with ``log_text``.
        output: the decisive output, only with ``log_text``.
    """

    policy: str
    action: str
    stage: str
    score: float
    is_refusal: bool
    signal: str
    latency_ms: float
    attempt: int
    model: str
    detail: str | None = None
    candidates: int = 1
    refused: int = 0
    prompt: str | None = field(default=None, repr=False)
    output: str | None = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view (text fields only when they were recorded)."""
        return asdict(self)


def log_event(event: DecisionEvent) -> None:
    """Log ``event`` on :data:`logger`; the message never contains text, the record may."""
    if event.signal == "error":
        level = logging.WARNING
    elif event.action in ("check", "pass"):
        level = logging.DEBUG
    else:
        level = logging.INFO
    if not logger.isEnabledFor(level):
        return
    logger.log(
        level,
        "policy %s: %s (stage %s, attempt %d, score %.3f, signal %s, %.1f ms)",
        event.policy,
        event.action,
        event.stage,
        event.attempt,
        event.score,
        event.signal,
        event.latency_ms,
        extra={"norefusal": event.to_dict()},
    )


_COUNTERS = (
    "decisions",
    "scans",
    "refusals",
    "provider",
    "allowlisted",
    "skipped",
    "errors",
    "errors_blocked",
    "passes",
    "flags",
    "raises",
    "replacements",
    "retries",
    "fallbacks",
    "blocks",
)


class Metrics:
    """Thread-safe counters of one Guard; :meth:`snapshot` exports them.

    ``scans`` counts checked outputs (every candidate), ``refusals`` those the classifier or a
    provider signal found refused, and ``provider`` / ``allowlisted`` / ``skipped`` those
    decided by a provider signal, the allow-list or sampling. ``errors`` counts outputs the
    scanner failed on or timed out on, whatever ``on_error`` made of them, and
    ``errors_blocked`` those of them withheld as refusals (``on_error: block``): a scanner
    error is never a refusal here, so a scanner outage cannot read as a model that refuses.
    ``decisions`` counts events, and ``passes`` ... ``blocks`` count each action taken.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(_COUNTERS, 0)

    def add(self, **counts: int) -> None:
        with self._lock:
            for key, value in counts.items():
                self._counts[key] += value

    def snapshot(self) -> dict[str, float]:
        """The counters now, plus two rates (each 0.0 while it has nothing to divide by).

        ``refusal_rate`` is ``refusals`` over the outputs whose content decided their verdict
        (``scans`` less ``errors`` and ``skipped``): neither a scanner outage nor sampling
        moves it. ``error_rate`` is ``errors / scans``.
        """
        with self._lock:
            data: dict[str, float] = dict(self._counts)
        decided = data["scans"] - data["errors"] - data["skipped"]
        data["refusal_rate"] = data["refusals"] / decided if decided else 0.0
        data["error_rate"] = data["errors"] / data["scans"] if data["scans"] else 0.0
        return data

    def reset(self) -> None:
        """Set every counter back to zero."""
        with self._lock:
            self._counts = dict.fromkeys(_COUNTERS, 0)


ACTION_COUNTER = {
    "pass": "passes",
    "flag": "flags",
    "raise": "raises",
    "replace": "replacements",
    "retry": "retries",
    "fallback": "fallbacks",
    "block": "blocks",
}
