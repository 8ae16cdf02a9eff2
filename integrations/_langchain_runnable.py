"""``NoRefusalGuard``: a Runnable step that checks a model's output in an LCEL chain.

chain = llm | NoRefusalGuard("strict")
carry = RunnableParallel(prompt=RunnablePassthrough(), output=llm)
chain = prompt | carry | NoRefusalGuard("retry-then-raise", model=llm)
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Generator, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.prompt_values import PromptValue
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.runnables.config import patch_config
from norefusal import ConfigurationError, RefusalDetected
from norefusal.policies import Action, Candidate, FallbackRequest, Outcome, RetryRequest

from ._langchain_common import (
    Check,
    Decide,
    Feed,
    Finish,
    PolicyLike,
    adrive,
    arun_op,
    drive,
    resolve_guard,
    run_op,
)
from ._langchain_errors import as_langchain_error
from ._langchain_messages import content_text, message_candidate, prompt_text, replace_text

if TYPE_CHECKING:
    from langchain_core.callbacks import (
        AsyncCallbackManagerForChainRun,
        CallbackManagerForChainRun,
    )
    from norefusal import NoRefusalScanner, ScanResult
    from norefusal.policies import DecisionEvent, Guard, GuardMonitor, StreamAction

__all__ = ["NoRefusalGuard"]


def _with_instruction(value: object, instruction: str | None) -> object:
    """The model input for a retry: ``value`` with the policy's instruction as a last user turn."""
    if instruction is None:
        return value
    if isinstance(value, str):
        return f"{value}\n\n{instruction}"
    if isinstance(value, PromptValue):
        return [*value.to_messages(), HumanMessage(instruction)]
    if isinstance(value, BaseMessage):
        return [value, HumanMessage(instruction)]
    if isinstance(value, Sequence):
        return [*value, HumanMessage(instruction)]
    return value  # chain inputs (a mapping): the upstream prompt decides; retry as it was


def _replaced(response: object, indices: Sequence[int], message: str) -> object:
    if isinstance(response, AIMessage):
        return replace_text(response, message)
    return message


class _StreamState:
    """One stream through the guard: what it has seen, and its logic as flows (no I/O here)."""

    def __init__(self, guard: Guard, prompt_key: str, output_key: str) -> None:
        self.guard = guard
        self.prompt_key = prompt_key
        self.output_key = output_key
        self.prompt = ""
        self.monitor: GuardMonitor | None = None
        self.native: Candidate | None = None
        self.decided = False
        self.is_message = False

    def output_of(self, chunk: object) -> tuple[bool, object]:
        """``(has output, output chunk)``; a mapping chunk may carry only the prompt."""
        if isinstance(chunk, Mapping):
            if self.prompt_key in chunk:
                self.prompt = prompt_text(chunk[self.prompt_key])
            if self.output_key not in chunk:
                return False, None
            chunk = chunk[self.output_key]
        return True, chunk

    def delta(self, chunk: object) -> str:
        """``chunk``'s text; notes a provider refusal signal the chunk carries."""
        if isinstance(chunk, BaseMessage):
            self.is_message = True
            candidate = message_candidate(chunk, standard_blocks=False)
            if candidate.refusal is not None and self.native is None:
                self.native = candidate
            delta = content_text(chunk.content)
        elif isinstance(chunk, str):
            delta = chunk
        else:
            raise TypeError(_bad_input(chunk))
        return delta

    def stream_monitor(self) -> GuardMonitor:
        """The stream's monitor, started on first use (once the prompt had its chance)."""
        if self.monitor is None:
            self.monitor = self.guard.monitor(self.prompt)
        return self.monitor

    def native_candidate(self) -> Candidate | None:
        """A provider refusal seen in a chunk (once), as a candidate over the text so far."""
        native, self.native = self.native, None
        if native is None:
            return None
        return Candidate(text=self.text, refusal=native.refusal, detail=native.detail)

    @property
    def text(self) -> str:
        return self.monitor.text if self.monitor is not None else ""

    def replacement_chunk(self, action: StreamAction) -> object:
        text = action.replacement or ""
        return AIMessageChunk(content=text) if self.is_message else text

    # -- the logic, once: flows that yield ops (see _langchain_common) ------------------

    def chunk_flow(self, raw: object) -> Generator[object, Any, tuple[list[Any], bool]]:
        """What to pass on for one input chunk, and whether to stop reading the model."""
        has, chunk = self.output_of(raw)
        if not has:
            return [], False
        if self.decided:
            return [chunk], False
        found: ScanResult | None = yield Feed(self.stream_monitor(), self.delta(chunk))
        native = self.native_candidate()
        if native is not None:
            checked: ScanResult = yield Check(self.prompt, native)
            found = checked if checked.is_refusal else found
        if found is None:
            return [chunk], False
        action = yield from self._decide(found)  # raises under a raising policy
        if action.kind == "replace":
            return [self.replacement_chunk(action)], True
        return [chunk], False  # flagged: pass the rest through unchecked

    def end_flow(self) -> Generator[object, Any, list[Any]]:
        """What to add once the model's stream ended: the whole text is checked once."""
        if self.decided:
            return []
        final: ScanResult = yield Finish(self.stream_monitor())
        if not final.is_refusal:
            return []
        action = yield from self._decide(final)
        return [self.replacement_chunk(action)] if action.kind == "replace" else []

    def _decide(self, found: ScanResult) -> Generator[object, Any, StreamAction]:
        self.decided = True
        try:
            action: StreamAction = yield Decide(self.prompt, self.text, found)
        except RefusalDetected as exc:
            raise _converted(exc, None) from None
        return action


class _Gate(Iterator[Any]):
    """The guard's input, which stops yielding once the guard has decided to end the stream.

    LangChain drains a step's input after the step finishes (to trace the whole input); the
    gate keeps that from reading the rest of a refused answer out of the model.
    """

    def __init__(self, inner: Iterator[Any]) -> None:
        self._inner = inner
        self.closed = False

    def __next__(self) -> Any:
        if self.closed:
            raise StopIteration
        return next(self._inner)


class _AsyncGate(AsyncIterator[Any]):
    """:class:`_Gate` for async streams."""

    def __init__(self, inner: AsyncIterator[Any]) -> None:
        self._inner = inner
        self.closed = False

    async def __anext__(self) -> Any:
        if self.closed:
            raise StopAsyncIteration
        return await self._inner.__anext__()


def _bad_input(value: object) -> str:
    return (
        f"NoRefusalGuard takes a chat model's message, a string, or a mapping with the output "
        f"under its output_key; got {type(value).__name__}. Put the guard right after the model "
        "(or after a RunnableParallel that carries the prompt)."
    )


class NoRefusalGuard(Runnable[Any, Any]):
    """A chain step that passes a model's output through, or acts on it when the model refused.

    Input: a chat model's message (or chunks of one), a string, or a mapping that also
    carries the prompt, as a ``RunnableParallel`` builds it: ``{prompt_key: the model's input,
    output_key: the model's output}``. Output: the model's output (for a mapping, the value
    under ``output_key``), or what the policy made of it.

    On a refusal the policy decides: ``flag`` passes it through, ``raise`` raises
    :data:`~norefusal.integrations.langchain.LangChainRefusalDetected` (a
    :class:`~norefusal.RefusalDetected`, and LangChain's ``ModelRefusalError`` where it exists;
    use it in ``with_fallbacks(..., exceptions_to_handle=(RefusalDetected,))``), ``replace``
    returns the policy's message (an ``AIMessage`` keeping the refused message's id), and
    ``retry`` / ``fallback`` ask ``model`` / ``fallback`` again with the prompt, which then
    must be carried in a mapping. A retry adds the policy's ``retry_instruction`` as a last
    user message (to a string prompt: as a last paragraph); a prompt that is a mapping of
    chain inputs is retried as it was, so carry the rendered prompt (put the
    ``RunnableParallel`` after the prompt template) to have the instruction added.

    ``stream`` and ``astream`` pass chunks on as they arrive, feeding a per-stream monitor; on
    a refusal they stop reading the model: a raising policy raises, ``replace`` ends the stream
    with the replacement (after what was already passed on), and retry and fallback apply the
    policy's ``final_action`` (a stream already handed out cannot be restarted).

    Args:
        policy: a :class:`~norefusal.policies.Policy`, a built-in policy name, or ``None``
            (``monitor``: flag only).
        guard: a ready :class:`~norefusal.policies.Guard` instead of policy/scanner/on_decision.
        scanner: the :class:`~norefusal.NoRefusalScanner` to use.
        on_decision: called with every :class:`~norefusal.policies.DecisionEvent`.
        model: what ``retry`` invokes again with the prompt (the same model as upstream).
        fallback: what ``fallback`` invokes with the prompt: a Runnable, or a mapping from the
            policy's ``fallback_model`` name to one.
        prompt_key: the mapping key holding the prompt.
        output_key: the mapping key holding the model's output.
        on_outcome: called with every :class:`~norefusal.policies.Outcome` (not for streams).
    """

    def __init__(
        self,
        policy: PolicyLike = None,
        *,
        guard: Guard | None = None,
        scanner: NoRefusalScanner | None = None,
        on_decision: Callable[[DecisionEvent], Any] | None = None,
        model: Runnable[Any, Any] | None = None,
        fallback: Runnable[Any, Any] | Mapping[str, Runnable[Any, Any]] | None = None,
        prompt_key: str = "prompt",
        output_key: str = "output",
        on_outcome: Callable[[Outcome[Any]], Any] | None = None,
    ) -> None:
        self._guard = resolve_guard(
            policy, guard=guard, scanner=scanner, on_decision=on_decision, owner="NoRefusalGuard"
        )
        chosen = self._guard.policy
        if chosen.action is Action.RETRY and model is None:
            raise ConfigurationError(
                f"NoRefusalGuard: policy {chosen.name!r} retries; pass model=<the chat model> so "
                "the guard can ask it again."
            )
        if chosen.fallback_model is not None and fallback is None:
            raise ConfigurationError(
                f"NoRefusalGuard: policy {chosen.name!r} falls back to {chosen.fallback_model!r}; "
                "pass fallback=<a Runnable> (or a mapping from that name to one)."
            )
        self._model = model
        self._fallback = fallback
        self._prompt_key = prompt_key
        self._output_key = output_key
        self._on_outcome = on_outcome
        self.name = "NoRefusalGuard"

    @property
    def guard(self) -> Guard:
        """The :class:`~norefusal.policies.Guard` that checks and decides."""
        return self._guard

    # -- inputs --------------------------------------------------------------------------

    def _split(self, value: object) -> tuple[object, str, object]:
        """``(prompt value, prompt text, output)`` from the guard's input."""
        if isinstance(value, Mapping):
            if self._output_key not in value:
                raise TypeError(
                    f"NoRefusalGuard got a mapping without {self._output_key!r}; its keys are "
                    f"{sorted(map(str, value))}. Set output_key= to the key holding the output."
                )
            prompt = value.get(self._prompt_key)
            return prompt, prompt_text(prompt), value[self._output_key]
        if not isinstance(value, (BaseMessage, str)):
            raise TypeError(_bad_input(value))
        return None, "", value

    def _fallback_for(self, name: str) -> Runnable[Any, Any]:
        if isinstance(self._fallback, Mapping):
            try:
                return self._fallback[name]
            except KeyError:
                raise ConfigurationError(
                    f"NoRefusalGuard: no fallback for model {name!r}; the fallback mapping has "
                    f"{sorted(self._fallback)}."
                ) from None
        assert self._fallback is not None  # checked in __init__
        return self._fallback

    def _need_prompt(self, prompt: object, what: str) -> None:
        if prompt is None:
            raise ConfigurationError(
                f"NoRefusalGuard: the policy's {what} needs the prompt: feed the guard a mapping "
                f"{{{self._prompt_key!r}: <model input>, {self._output_key!r}: <model output>}}, "
                "e.g. with RunnableParallel."
            )

    # -- invoke --------------------------------------------------------------------------

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return self._call_with_config(self._invoke, input, config, **kwargs)

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any) -> Any:
        return await self._acall_with_config(self._ainvoke, input, config, **kwargs)

    def _invoke(
        self, value: Any, run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> Any:
        prompt, text, output = self._split(value)
        child = patch_config(config, callbacks=run_manager.get_child())
        latest = [output]  # the last answer, for the error's raw_message

        def call_again(request: RetryRequest) -> Any:
            self._need_prompt(prompt, "retry")
            assert self._model is not None
            retry_input = _with_instruction(prompt, request.instruction)
            latest.append(self._model.invoke(retry_input, child))
            return latest[-1]

        def call_fallback(request: FallbackRequest) -> Any:
            self._need_prompt(prompt, "fallback")
            latest.append(self._fallback_for(request.model).invoke(prompt, child))
            return latest[-1]

        try:
            outcome = self._guard.run(
                text,
                output,
                candidates=_candidates,
                call_again=call_again if self._model is not None else None,
                call_fallback=call_fallback if self._fallback is not None else None,
                replace=_replaced,
            )
        except RefusalDetected as exc:
            raise _converted(exc, latest[-1]) from None
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome.response

    async def _ainvoke(
        self, value: Any, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> Any:
        prompt, text, output = self._split(value)
        child = patch_config(config, callbacks=run_manager.get_child())
        latest = [output]

        async def call_again(request: RetryRequest) -> Any:
            self._need_prompt(prompt, "retry")
            assert self._model is not None
            retry_input = _with_instruction(prompt, request.instruction)
            latest.append(await self._model.ainvoke(retry_input, child))
            return latest[-1]

        async def call_fallback(request: FallbackRequest) -> Any:
            self._need_prompt(prompt, "fallback")
            latest.append(await self._fallback_for(request.model).ainvoke(prompt, child))
            return latest[-1]

        try:
            outcome = await self._guard.arun(
                text,
                output,
                candidates=_candidates,
                call_again=call_again if self._model is not None else None,
                call_fallback=call_fallback if self._fallback is not None else None,
                replace=_replaced,
            )
        except RefusalDetected as exc:
            raise _converted(exc, latest[-1]) from None
        if self._on_outcome is not None:
            self._on_outcome(outcome)
        return outcome.response

    # -- streaming -----------------------------------------------------------------------

    def stream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[Any]:
        yield from self.transform(iter([input]), config, **kwargs)

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        async def one() -> AsyncIterator[Any]:
            yield input

        async for chunk in self.atransform(one(), config, **kwargs):
            yield chunk

    def transform(
        self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> Iterator[Any]:
        gate = _Gate(input)
        yield from self._transform_stream_with_config(
            gate, lambda chunks: self._transform(chunks, gate), config, **kwargs
        )

    async def atransform(
        self,
        input: AsyncIterator[Any],
        config: RunnableConfig | None = None,
        **kwargs: Any | None,
    ) -> AsyncIterator[Any]:
        gate = _AsyncGate(input)
        async for chunk in self._atransform_stream_with_config(
            gate, lambda chunks: self._atransform(chunks, gate), config, **kwargs
        ):
            yield chunk

    def _transform(self, chunks: Iterator[Any], gate: _Gate) -> Iterator[Any]:
        state = _StreamState(self._guard, self._prompt_key, self._output_key)
        do = functools.partial(run_op, self._guard)
        for raw in chunks:
            out, stop = drive(state.chunk_flow(raw), do)
            if stop:
                gate.closed = True  # stop reading the model: the rest is not needed
            yield from out
            if stop:
                return
        yield from drive(state.end_flow(), do)

    async def _atransform(self, chunks: AsyncIterator[Any], gate: _AsyncGate) -> AsyncIterator[Any]:
        state = _StreamState(self._guard, self._prompt_key, self._output_key)
        ado = functools.partial(arun_op, self._guard)
        async for raw in chunks:
            out, stop = await adrive(state.chunk_flow(raw), ado)
            if stop:
                gate.closed = True
            for chunk in out:
                yield chunk
            if stop:
                return
        for chunk in await adrive(state.end_flow(), ado):
            yield chunk


def _candidates(response: object) -> list[Candidate]:
    if isinstance(response, (BaseMessage, str)):
        return [message_candidate(response)]
    raise TypeError(_bad_input(response))


def _converted(exc: RefusalDetected, output: object) -> RefusalDetected:
    raw = output if isinstance(output, BaseMessage) else None
    refusal = message_candidate(raw).refusal if raw is not None else None
    return as_langchain_error(exc, raw_message=raw, refusal=refusal)
