"""``NoRefusalMiddleware``: checks every model call of a LangChain 1.x agent (``create_agent``).

Needs the ``langchain`` package (1.x); :mod:`norefusal.integrations.langchain` imports this
module only when it is installed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain.agents.middleware import AgentMiddleware, ModelRequest, ModelResponse
from langchain.agents.middleware.types import ExtendedModelResponse
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from norefusal import ConfigurationError, RefusalDetected
from norefusal.policies import Candidate, FallbackRequest, Outcome, RetryRequest

from ._langchain_common import PolicyLike, resolve_guard
from ._langchain_errors import as_langchain_error
from ._langchain_messages import message_candidate, prompt_text, replace_text

if TYPE_CHECKING:
    from norefusal import NoRefusalScanner
    from norefusal.policies import DecisionEvent, Guard

__all__ = ["NoRefusalMiddleware"]

_Result = ModelResponse[Any] | AIMessage | ExtendedModelResponse[Any]


def _messages(result: object) -> list[BaseMessage]:
    if isinstance(result, ExtendedModelResponse):
        result = result.model_response
    if isinstance(result, ModelResponse):
        return list(result.result)
    if isinstance(result, AIMessage):
        return [result]
    return []


def _candidates(result: object) -> list[Candidate]:
    # One candidate per AI message; a structured-output ToolMessage is not the model talking.
    return [message_candidate(m) for m in _messages(result) if isinstance(m, AIMessage)]


def _replace(result: Any, indices: Sequence[int], message: str) -> Any:
    """``result`` with the refused AI messages (by candidate index) replaced, ids kept."""
    chosen = set(indices)
    out: list[BaseMessage] = []
    seen = 0
    for m in _messages(result):
        if isinstance(m, AIMessage):
            out.append(replace_text(m, message) if seen in chosen else m)
            seen += 1
        else:
            out.append(m)
    if isinstance(result, ExtendedModelResponse):
        inner = ModelResponse(
            result=out, structured_response=result.model_response.structured_response
        )
        return ExtendedModelResponse(model_response=inner, command=result.command)
    structured = result.structured_response if isinstance(result, ModelResponse) else None
    return ModelResponse(result=out, structured_response=structured)


def _retry_request(request: ModelRequest[Any], instruction: str | None) -> ModelRequest[Any]:
    if instruction is None:
        return request
    return request.override(messages=[*request.messages, HumanMessage(instruction)])


def _refused_message(result: object) -> AIMessage | None:
    for m in _messages(result):
        if isinstance(m, AIMessage):
            return m
    return None


class NoRefusalMiddleware(AgentMiddleware[Any, Any, Any]):
    """Agent middleware that checks each model response and applies a policy to refusals.

    It wraps the model call (``wrap_model_call`` / ``awrap_model_call``), so every action is
    available: ``flag`` passes the response on (the decision is an event), ``raise`` raises
    :data:`~norefusal.integrations.langchain.LangChainRefusalDetected` out of the agent,
    ``replace`` swaps the refused AI message for the policy's text under the same message id
    (so it replaces it in the agent state, and its tool calls are dropped), ``retry`` calls the
    model again (the policy's ``retry_instruction`` added as a last user turn for that call
    only), and ``fallback`` calls the policy's ``fallback_model`` instead.

    The prompt scanned is the last user message of the request. A response with only tool
    calls has no text and is not a refusal.

    Args:
        policy: a :class:`~norefusal.policies.Policy`, a built-in name, or ``None`` (monitor).
        guard: a ready :class:`~norefusal.policies.Guard` instead of policy/scanner/on_decision.
        scanner: the :class:`~norefusal.NoRefusalScanner` to use.
        on_decision: called with every :class:`~norefusal.policies.DecisionEvent`.
        fallback: the chat model for ``fallback``, or a mapping from the policy's
            ``fallback_model`` name to one. Default: ``init_chat_model(policy.fallback_model)``,
            resolved at the first fallback.
        on_outcome: called with every :class:`~norefusal.policies.Outcome`.
    """

    def __init__(
        self,
        policy: PolicyLike = None,
        *,
        guard: Guard | None = None,
        scanner: NoRefusalScanner | None = None,
        on_decision: Callable[[DecisionEvent], Any] | None = None,
        fallback: BaseChatModel | Mapping[str, BaseChatModel] | None = None,
        on_outcome: Callable[[Outcome[Any]], Any] | None = None,
    ) -> None:
        super().__init__()
        self._guard = resolve_guard(
            policy,
            guard=guard,
            scanner=scanner,
            on_decision=on_decision,
            owner="NoRefusalMiddleware",
        )
        self._fallback = fallback
        self._resolved: dict[str, BaseChatModel] = {}
        self._on_outcome = on_outcome

    @property
    def guard(self) -> Guard:
        """The :class:`~norefusal.policies.Guard` that checks and decides."""
        return self._guard

    def _fallback_model(self, name: str) -> BaseChatModel:
        if isinstance(self._fallback, BaseChatModel):
            return self._fallback
        if isinstance(self._fallback, Mapping):
            if name in self._fallback:
                return self._fallback[name]
            raise ConfigurationError(
                f"NoRefusalMiddleware: no fallback model for {name!r}; the fallback mapping has "
                f"{sorted(self._fallback)}."
            )
        if name not in self._resolved:
            from langchain.chat_models import init_chat_model

            try:
                self._resolved[name] = init_chat_model(name)
            except Exception as exc:
                raise ConfigurationError(
                    f"NoRefusalMiddleware: could not create the fallback model {name!r} with "
                    f"init_chat_model ({type(exc).__name__}); pass fallback=<a chat model>."
                ) from exc
        return self._resolved[name]

    def wrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], ModelResponse[Any]],
    ) -> _Result:
        latest = [handler(request)]  # the last response, for the error's raw_message

        def call_again(retry: RetryRequest) -> ModelResponse[Any]:
            latest.append(handler(_retry_request(request, retry.instruction)))
            return latest[-1]

        def call_fallback(fallback: FallbackRequest) -> ModelResponse[Any]:
            model = self._fallback_model(fallback.model)
            latest.append(handler(request.override(model=model)))
            return latest[-1]

        try:
            outcome = self._guard.run(
                prompt_text(request.messages),
                latest[0],
                candidates=_candidates,
                call_again=call_again,
                call_fallback=call_fallback,
                replace=_replace,
            )
        except RefusalDetected as exc:
            raise as_langchain_error(exc, raw_message=_refused_message(latest[-1])) from None
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        result: _Result = outcome.response
        return result

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> _Result:
        latest = [await handler(request)]

        async def call_again(retry: RetryRequest) -> ModelResponse[Any]:
            latest.append(await handler(_retry_request(request, retry.instruction)))
            return latest[-1]

        async def call_fallback(fallback: FallbackRequest) -> ModelResponse[Any]:
            model = self._fallback_model(fallback.model)
            latest.append(await handler(request.override(model=model)))
            return latest[-1]

        try:
            outcome = await self._guard.arun(
                prompt_text(request.messages),
                latest[0],
                candidates=_candidates,
                call_again=call_again,
                call_fallback=call_fallback,
                replace=_replace,
            )
        except RefusalDetected as exc:
            raise as_langchain_error(exc, raw_message=_refused_message(latest[-1])) from None
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        result: _Result = outcome.response
        return result
