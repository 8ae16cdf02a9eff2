"""LangChain integration: callbacks on any model, a guard step for chains, agent middleware.

    from norefusal.integrations.langchain import (
        NoRefusalCallbackHandler, NoRefusalGuard, NoRefusalMiddleware,
    )

    llm.invoke(prompt, config={"callbacks": [NoRefusalCallbackHandler("strict")]})
    chain = llm | NoRefusalGuard("strict")
    agent = create_agent(model, tools, middleware=[NoRefusalMiddleware(policy)])

Each applies a :class:`~norefusal.policies.Policy` through the shared decision engine
(:class:`~norefusal.policies.Guard`); provider refusal signals (standard ``refusal`` content
blocks, ``additional_kwargs["refusal"]``, a refusal ``finish_reason``/``stop_reason``) decide
before the classifier. A raising policy raises :data:`LangChainRefusalDetected`, a
:class:`~norefusal.RefusalDetected` that is also langchain-core's ``ModelRefusalError`` where
the installed langchain-core has one.

Needs ``langchain-core``; :class:`NoRefusalMiddleware` also needs ``langchain`` 1.x
(``pip install "norefusal[langchain]"``). Without ``langchain`` this module still imports, and
creating the middleware raises :class:`~norefusal.MissingDependencyError`.

Callback caveat: LangChain swallows exceptions from an *async* handler when the model is
invoked synchronously, so use :class:`NoRefusalCallbackHandler` (the sync one, which LangChain
also runs from async code) unless every call is async.
"""

from __future__ import annotations

from typing import Any

from norefusal import MissingDependencyError

try:
    import langchain_core  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise MissingDependencyError("norefusal.integrations.langchain", "langchain") from exc

from ._langchain_callbacks import (
    AsyncNoRefusalCallbackHandler,
    NoRefusalCallbackHandler,
    RunVerdict,
)
from ._langchain_errors import LangChainRefusalDetected
from ._langchain_runnable import NoRefusalGuard

try:
    from ._langchain_middleware import NoRefusalMiddleware
except ImportError as _missing:  # langchain (agents) not installed: only langchain-core
    _MIDDLEWARE_ERROR: ImportError | None = _missing

    class NoRefusalMiddleware:  # type: ignore[no-redef]
        """Placeholder: agent middleware needs the ``langchain`` package (1.x)."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise MissingDependencyError(
                "NoRefusalMiddleware (LangChain agent middleware)", "langchain"
            ) from _MIDDLEWARE_ERROR
else:
    _MIDDLEWARE_ERROR = None

__all__ = [
    "AsyncNoRefusalCallbackHandler",
    "LangChainRefusalDetected",
    "NoRefusalCallbackHandler",
    "NoRefusalGuard",
    "NoRefusalMiddleware",
    "RunVerdict",
]
