"""The verdict of one scan: LLM Guard's ``(sanitized, valid, risk)`` tuple with more fields."""

from __future__ import annotations

import enum
import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

__all__ = ["ScanResult", "Signal", "risk_score"]


class Signal(str, enum.Enum):
    """What decided a verdict."""

    #: The classifier (or keyword matcher) scored the text.
    CLASSIFIER = "classifier"
    #: The provider said so natively (``message.refusal``, a refusal content block, a filter).
    PROVIDER = "provider"
    #: The output was empty or whitespace: nothing to refuse with.
    EMPTY = "empty"
    #: The output was allow-listed by a policy (a known guardrail block message).
    ALLOWLIST = "allowlist"
    #: The output was not scanned (policy sampling).
    SKIPPED = "skipped"
    #: The scanner failed; the policy's ``on_error`` decided.
    ERROR = "error"


_NO_ATTRIBUTES: Mapping[str, Any] = MappingProxyType({})


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, not {type(value).__name__}.")
    number = float(value)
    if math.isnan(number):
        raise ValueError(f"{name} must be a number, got NaN.")
    return number


def _check_type(value: object, kind: type, name: str) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be a {kind.__name__}, not {type(value).__name__}.")


def risk_score(score: float, threshold: float) -> float:
    """LLM Guard's risk score: ``score`` mapped piecewise-linearly onto [-1, 1].

    0 at the threshold, ``(s - t) / (1 - t)`` above it, ``(s - t) / t`` below it, rounded to
    one decimal and clamped, exactly as ``llm_guard.util.calculate_risk_score``.
    """
    if score > threshold:
        risk = round((score - threshold) / (1 - threshold), 1)
    else:
        risk = round((score - threshold) / threshold, 1)
    return min(max(risk, -1.0), 1.0)


class ScanResult(tuple[str, bool, float]):
    """Unpacks as LLM Guard's ``(sanitized, valid, risk)``; carries the rest as attributes.

    ``valid`` is ``not is_refusal``. ``sanitized`` is always the output, unchanged. Immutable
    (no field can be set or deleted), hashable, comparable as the 3-tuple it is, and validated
    when built (see :meth:`__new__`).

    Attributes:
        sanitized: the output, unchanged.
        valid: ``True`` when the output is not a refusal.
        risk: LLM Guard's risk score in [-1, 1] (see :func:`risk_score`).
        score: P(refusal) in [0, 1].
        is_refusal: ``score > threshold`` (or a provider signal said so).
        threshold: the threshold the verdict used.
        signal: what decided (:class:`Signal`).
        model: the name of the model or preset that scored the text.
        detail: a short machine-readable reason (e.g. ``"message.refusal"``), or ``None``.
    """

    # A tuple subclass cannot have non-empty __slots__: the extras live in one private tuple in
    # the instance dict, which ``__dict__`` hides behind an empty read-only view, and the
    # fields are read-only properties. So no attribute can be set, replaced or deleted, and
    # pickling, to_dict() and equality always see a whole result.
    _extras: tuple[float, bool, float, Signal, str, str | None]

    def __new__(
        cls,
        output: str,
        *,
        score: float,
        threshold: float,
        signal: Signal | str = Signal.CLASSIFIER,
        model: str = "",
        is_refusal: bool | None = None,
        detail: str | None = None,
    ) -> ScanResult:
        """Build a result; ``valid`` and ``risk`` follow from the other fields.

        Raises:
            TypeError: a field of the wrong type (``score`` and ``threshold`` are real
                numbers, not bools; ``is_refusal`` a bool or ``None``; ``output`` and
                ``model`` strings; ``detail`` a string or ``None``).
            ValueError: ``score`` outside [0, 1], ``threshold`` outside (0, 1) (either NaN),
                or an unknown ``signal``.
        """
        _check_type(output, str, "output")
        score = _number(score, "score")
        if not 0.0 <= score <= 1.0:
            raise ValueError(f"score must be a probability in [0, 1], got {score!r}.")
        threshold = _number(threshold, "threshold")
        if not 0.0 < threshold < 1.0:  # 0 or 1 would divide by zero in the risk score
            raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}.")
        if is_refusal is not None:
            _check_type(is_refusal, bool, "is_refusal")
        _check_type(model, str, "model")
        if detail is not None:
            _check_type(detail, str, "detail")
        refusal = score > threshold if is_refusal is None else is_refusal
        self = super().__new__(cls, (output, not refusal, risk_score(score, threshold)))
        extras = (score, refusal, threshold, Signal(signal), model, detail)
        object.__setattr__(self, "_extras", extras)
        return self

    def __init_subclass__(cls, **kwargs: Any) -> None:  # pragma: no cover - not for subclassing
        raise TypeError("ScanResult is final.")

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("ScanResult is immutable.")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("ScanResult is immutable.")

    @property
    def __dict__(self) -> Mapping[str, Any]:  # type: ignore[override]
        return _NO_ATTRIBUTES

    @property
    def score(self) -> float:
        return self._extras[0]

    @property
    def is_refusal(self) -> bool:
        return self._extras[1]

    @property
    def threshold(self) -> float:
        return self._extras[2]

    @property
    def signal(self) -> Signal:
        return self._extras[3]

    @property
    def model(self) -> str:
        return self._extras[4]

    @property
    def detail(self) -> str | None:
        return self._extras[5]

    @property
    def sanitized(self) -> str:
        return self[0]

    @property
    def valid(self) -> bool:
        return self[1]

    @property
    def risk(self) -> float:
        return self[2]

    def to_dict(self, *, include_output: bool = False) -> dict[str, Any]:
        """A JSON-ready view; the output text only when ``include_output`` is true."""
        data: dict[str, Any] = {
            "valid": self.valid,
            "risk": self.risk,
            "score": self.score,
            "is_refusal": self.is_refusal,
            "threshold": self.threshold,
            "signal": self.signal.value,
            "model": self.model,
            "detail": self.detail,
        }
        if include_output:
            data["sanitized"] = self.sanitized
        return data

    def __repr__(self) -> str:
        return (
            f"ScanResult(valid={self.valid}, risk={self.risk}, score={self.score:.4f}, "
            f"threshold={self.threshold}, signal={self.signal.value!r}, model={self.model!r})"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (
                self.sanitized,
                self.score,
                self.threshold,
                self.signal,
                self.model,
                self.is_refusal,
                self.detail,
            ),
        )


def _rebuild(
    output: str,
    score: float,
    threshold: float,
    signal: Signal,
    model: str,
    is_refusal: bool,
    detail: str | None,
) -> ScanResult:
    return ScanResult(
        output,
        score=score,
        threshold=threshold,
        signal=signal,
        model=model,
        is_refusal=is_refusal,
        detail=detail,
    )
