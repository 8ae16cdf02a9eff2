"""The refusal exception the LangChain integration raises, usable where LangChain's is caught.

    RefusalDetected                      (norefusal)
    └── LangChainRefusalDetected         also a langchain_core.exceptions.ModelRefusalError
                                         when the installed langchain-core has one

langchain-core added ``ModelRefusalError`` (a ``ModelError``) for provider refusals. Where it
exists, the exception raised here subclasses it too, so ``except ModelRefusalError``,
``exceptions_to_handle=(ModelRefusalError,)`` and LangChain's own refusal handling catch our
verdicts as well as ``except RefusalDetected`` does. Where it does not, the class is a plain
subclass of :class:`~norefusal.RefusalDetected` with the same attributes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from norefusal import RefusalDetected

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage
    from norefusal import ScanResult

__all__ = ["LangChainRefusalDetected", "as_langchain_error", "model_refusal_error"]


def model_refusal_error() -> type[Exception] | None:
    """langchain-core's ``ModelRefusalError`` if the installed version has it, else ``None``."""
    try:
        from langchain_core.exceptions import (  # type: ignore[attr-defined,unused-ignore]
            ModelRefusalError,
        )
    except ImportError:
        return None
    if isinstance(ModelRefusalError, type) and issubclass(ModelRefusalError, Exception):
        return ModelRefusalError
    return None


class _LangChainRefusalDetected(RefusalDetected):
    """The model refused and the policy says to raise (from a LangChain integration).

    Attributes:
        result: the :class:`~norefusal.ScanResult` that decided.
        prompt: the prompt that was scanned.
        output: the refused output text (never in the message).
        policy: the name of the policy that decided.
        raw_message: the refused LangChain message, when there was one.
        refusal: the provider's own refusal text, when the provider flagged it.
    """

    raw_message: BaseMessage | None
    refusal: str | None

    def __init__(
        self,
        result: ScanResult,
        *,
        prompt: str = "",
        output: str = "",
        policy: str | None = None,
        raw_message: BaseMessage | None = None,
        refusal: str | None = None,
    ) -> None:
        super().__init__(result, prompt=prompt, output=output, policy=policy)
        # Set after the base initialisers, which may reset them (ModelRefusalError does).
        self.raw_message = raw_message
        self.refusal = refusal

    def __reduce__(self) -> tuple[Any, ...]:
        return (
            _rebuild,
            (self.result, self.prompt, self.output, self.policy, self.raw_message, self.refusal),
        )


def build_error_class(base: type[Exception] | None) -> type[_LangChainRefusalDetected]:
    """The exception class for a given ``ModelRefusalError`` (or ``None`` when absent).

    Separate from the module-level detection so tests exercise both branches whatever
    langchain-core is installed.
    """
    if base is None:
        return _LangChainRefusalDetected
    return type(
        "LangChainRefusalDetected",
        (_LangChainRefusalDetected, base),
        {"__module__": __name__, "__doc__": _LangChainRefusalDetected.__doc__},
    )


_LangChainRefusalDetected.__name__ = _LangChainRefusalDetected.__qualname__ = (
    "LangChainRefusalDetected"
)

#: The exception the LangChain integration raises on a refusal under a raising policy.
LangChainRefusalDetected = build_error_class(model_refusal_error())


def _rebuild(
    result: ScanResult,
    prompt: str,
    output: str,
    policy: str | None,
    raw_message: BaseMessage | None,
    refusal: str | None,
) -> _LangChainRefusalDetected:
    return LangChainRefusalDetected(
        result,
        prompt=prompt,
        output=output,
        policy=policy,
        raw_message=raw_message,
        refusal=refusal,
    )


def as_langchain_error(
    exc: RefusalDetected,
    *,
    raw_message: BaseMessage | None = None,
    refusal: str | None = None,
) -> _LangChainRefusalDetected:
    """``exc`` as a :data:`LangChainRefusalDetected` carrying the refused message."""
    if isinstance(exc, LangChainRefusalDetected):
        if raw_message is not None and exc.raw_message is None:
            exc.raw_message = raw_message
        return exc
    new = LangChainRefusalDetected(
        exc.result,
        prompt=exc.prompt,
        output=exc.output,
        policy=exc.policy,
        raw_message=raw_message,
        refusal=refusal,
    )
    return new.with_traceback(exc.__traceback__)
