"""Callback handlers that scan every LangChain model run, paired with its prompt by ``run_id``.

Use the sync :class:`NoRefusalCallbackHandler` by default: LangChain calls it from sync and
async code alike (in a worker thread from async code) and honours ``raise_error`` in both.
:class:`AsyncNoRefusalCallbackHandler` never blocks the event loop, but **LangChain swallows an
async handler's exceptions when the model is invoked synchronously** (``invoke``, ``stream``,
``batch``): it runs the coroutine on a private loop and only logs "Error in callback
coroutine". Under a raising policy, use the async handler only with ``ainvoke``/``astream``.
"""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, LLMResult
from norefusal import ConfigurationError, RefusalDetected

from ._langchain_common import (
    Check,
    CheckAll,
    Decide,
    Feed,
    PolicyLike,
    adrive,
    arun_op,
    decisive,
    drive,
    may_raise,
    resolve_guard,
    run_op,
)
from ._langchain_errors import as_langchain_error
from ._langchain_messages import (
    content_text,
    generation_candidate,
    message_candidate,
    prompt_text,
)

if TYPE_CHECKING:
    from norefusal import NoRefusalScanner, ScanResult
    from norefusal.policies import Candidate, DecisionEvent, Guard, GuardMonitor, StreamAction

__all__ = ["AsyncNoRefusalCallbackHandler", "NoRefusalCallbackHandler", "RunVerdict"]

#: Verdicts kept in ``handler.results`` by default (oldest dropped first).
DEFAULT_MAX_RESULTS = 1024


@dataclass(frozen=True)
class RunVerdict:
    """The verdict on one model run, as a callback handler saw it.

    Attributes:
        run_id: the LangChain run.
        results: one :class:`~norefusal.ScanResult` per generation scanned (a mid-stream
            verdict holds the one that stopped the stream).
        action: ``"pass"`` (no refusal), or what the policy did: ``"flag"``, ``"raise"``
            (the handler raised), or ``"replace"`` (a callback cannot change the output:
            ``replacement`` holds what the policy would return instead; a scanner failure
            under ``on_error: block`` with a non-raising policy also shows as ``"replace"``,
            its result's signal being ``Signal.ERROR``).
        refused: whether any generation was a refusal.
        replacement: the policy's replacement message for ``"replace"``, else ``None``.
        streamed: ``True`` when a refusal was found mid-stream, before the run ended.
        prompt_known: ``False`` when ``on_llm_end`` came for a run whose start this handler
            never saw (attached mid-run, or shared across callback managers): the outputs were
            then scanned with an empty prompt.
    """

    run_id: UUID
    results: tuple[ScanResult, ...]
    action: str
    refused: bool
    replacement: str | None = None
    streamed: bool = False
    prompt_known: bool = True

    @property
    def result(self) -> ScanResult:
        """The decisive result: the highest-scoring refusal, else the highest score."""
        return self.results[decisive(self.results)]


@dataclass
class _Run:
    """In-flight state of one run; dropped at ``on_llm_end`` / ``on_llm_error``."""

    prompts: list[str]
    monitor: GuardMonitor | None = None
    verdict: RunVerdict | None = None


class _Tracker:
    """The run bookkeeping and the I/O-free half of both handlers."""

    def __init__(
        self,
        guard: Guard,
        *,
        max_results: int,
        on_verdict: Callable[[RunVerdict], Any] | None,
    ) -> None:
        if not isinstance(max_results, int) or max_results < 0:
            raise ConfigurationError(
                f"max_results must be a non-negative integer, got {max_results!r}."
            )
        if on_verdict is not None and not callable(on_verdict):
            raise ConfigurationError("on_verdict must be a callable taking a RunVerdict.")
        self.guard = guard
        self.max_results = max_results
        self.on_verdict = on_verdict
        self.runs: dict[UUID, _Run] = {}
        self.results: OrderedDict[UUID, RunVerdict] = OrderedDict()
        self.lock = threading.Lock()

    # -- runs -------------------------------------------------------------------------

    def start(self, run_id: UUID, prompts: Sequence[str]) -> None:
        self.runs[run_id] = _Run(prompts=list(prompts))

    def drop(self, run_id: UUID) -> _Run | None:
        return self.runs.pop(run_id, None)

    def record(self, verdict: RunVerdict) -> None:
        if self.max_results == 0:
            return
        with self.lock:
            self.results[verdict.run_id] = verdict
            self.results.move_to_end(verdict.run_id)
            while len(self.results) > self.max_results:
                self.results.popitem(last=False)

    # -- streaming --------------------------------------------------------------------

    def token_input(
        self, run_id: UUID, token: object, chunk: object
    ) -> tuple[_Run, GuardMonitor, str, Candidate | None] | None:
        """``(run, delta, native refusal candidate)`` for a token worth looking at, else None."""
        run = self.runs.get(run_id)
        if run is None or run.verdict is not None:
            return None  # unknown run (no state is created for it) or already decided
        delta = token if isinstance(token, str) else content_text(token)
        native: Candidate | None = None
        if isinstance(chunk, ChatGenerationChunk):
            if not delta:
                delta = content_text(chunk.message.content)
            candidate = message_candidate(chunk.message, standard_blocks=False)
            if candidate.refusal is not None:
                native = candidate
        if run.monitor is None:
            run.monitor = self.guard.monitor(run.prompts[0] if run.prompts else "")
        return run, run.monitor, delta, native

    # -- end of a run ----------------------------------------------------------------

    def end_input(
        self, run_id: UUID, response: LLMResult
    ) -> tuple[_Run | None, list[tuple[str, Candidate]]]:
        """The run (now dropped) and the ``(prompt, candidate)`` pairs to check."""
        run = self.drop(run_id)
        prompts = run.prompts if run is not None else []
        pairs: list[tuple[str, Candidate]] = []
        for i, generations in enumerate(response.generations):
            prompt = prompts[i] if i < len(prompts) else (prompts[-1] if prompts else "")
            pairs.extend((prompt, generation_candidate(g)) for g in generations)
        return run, pairs


def _verdict(
    run_id: UUID,
    results: Sequence[ScanResult],
    action: StreamAction | None,
    *,
    streamed: bool = False,
    prompt_known: bool = True,
) -> RunVerdict:
    refused = any(r.is_refusal for r in results)
    if not refused or action is None:
        kind, replacement = "pass", None
    else:
        kind, replacement = str(action.kind), action.replacement
    return RunVerdict(
        run_id=run_id,
        results=tuple(results),
        action=kind,
        refused=refused,
        replacement=replacement,
        streamed=streamed,
        prompt_known=prompt_known,
    )


def _raising(
    run_id: UUID, results: Sequence[ScanResult], *, streamed: bool, known: bool
) -> RunVerdict:
    return RunVerdict(
        run_id=run_id,
        results=tuple(results),
        action="raise",
        refused=True,
        streamed=streamed,
        prompt_known=known,
    )


class _HandlerBase:
    """Options, ``results`` and ``raise_error`` shared by the sync and async handlers."""

    _tracker: _Tracker
    raise_error: bool = False
    # Only model runs matter; skipping the rest saves LangChain a dispatch per event.
    ignore_chain = True
    ignore_agent = True
    ignore_retriever = True
    ignore_retry = True
    ignore_custom_event = True

    def _setup(
        self,
        policy: PolicyLike,
        *,
        guard: Guard | None,
        scanner: NoRefusalScanner | None,
        on_decision: Callable[[DecisionEvent], Any] | None,
        on_verdict: Callable[[RunVerdict], Any] | None,
        max_results: int,
    ) -> None:
        resolved = resolve_guard(
            policy,
            guard=guard,
            scanner=scanner,
            on_decision=on_decision,
            owner=type(self).__name__,
        )
        self._tracker = _Tracker(resolved, max_results=max_results, on_verdict=on_verdict)
        #: LangChain lets this handler's exceptions through only when the policy can raise.
        self.raise_error = may_raise(resolved)

    @property
    def guard(self) -> Guard:
        """The :class:`~norefusal.policies.Guard` that checks and decides."""
        return self._tracker.guard

    @property
    def results(self) -> Mapping[UUID, RunVerdict]:
        """Verdicts by ``run_id``, the latest ``max_results`` runs (a read-only view)."""
        return _ReadOnly(self._tracker.results)

    @property
    def in_flight(self) -> int:
        """Runs started and not yet ended (state held for them)."""
        return len(self._tracker.runs)

    # -- starts (no I/O) -----------------------------------------------------------

    def _chat_start(self, messages: list[list[BaseMessage]], run_id: UUID) -> None:
        self._tracker.start(run_id, [prompt_text(m) for m in messages])

    def _llm_start(self, prompts: list[str], run_id: UUID) -> None:
        self._tracker.start(run_id, [p if isinstance(p, str) else "" for p in prompts])

    # -- the logic, once: flows that yield ops (see _langchain_common) --------------

    def _token_flow(
        self, token: object, chunk: object, run_id: UUID
    ) -> Generator[object, Any, None]:
        got = self._tracker.token_input(run_id, token, chunk)
        if got is None:
            return
        run, monitor, delta, native = got
        found: ScanResult | None
        if native is not None:
            checked: ScanResult = yield Check(_first(run), native)
            found = checked if checked.is_refusal else None
        else:
            found = yield Feed(monitor, delta)
        if found is None:
            return
        text = monitor.text or (native.text if native else "") or ""
        try:
            action: StreamAction = yield Decide(_first(run), text, found)
        except RefusalDetected as exc:
            run.verdict = _raising(run_id, [found], streamed=True, known=True)
            yield _Publish(run.verdict)
            raise as_langchain_error(exc) from None
        # Decided: later tokens of this run are passed over, and on_llm_end reports this.
        run.verdict = _verdict(run_id, [found], action, streamed=True)

    def _end_flow(self, response: LLMResult, run_id: UUID) -> Generator[object, Any, None]:
        run, pairs = self._tracker.end_input(run_id, response)
        known = run is not None
        if run is not None and run.verdict is not None:
            yield _Publish(run.verdict)  # decided mid-stream; the policy already acted
            return
        results: list[ScanResult] = yield CheckAll(pairs)
        if not results:
            return
        best = decisive(results)
        action: StreamAction | None = None
        if results[best].is_refusal:
            prompt, candidate = pairs[best]
            try:
                action = yield Decide(prompt, candidate.text or "", results[best])
            except RefusalDetected as exc:
                yield _Publish(_raising(run_id, results, streamed=False, known=known))
                raise as_langchain_error(exc, refusal=candidate.refusal) from None
        yield _Publish(_verdict(run_id, results, action, prompt_known=known))

    def _do(self, op: object) -> Any:
        if isinstance(op, _Publish):
            self._tracker.record(op.verdict)
            if self._tracker.on_verdict is not None:
                self._tracker.on_verdict(op.verdict)
            return None
        return run_op(self._tracker.guard, op)

    async def _ado(self, op: object) -> Any:
        if isinstance(op, _Publish):
            self._tracker.record(op.verdict)
            if self._tracker.on_verdict is not None:
                got = self._tracker.on_verdict(op.verdict)
                if inspect.isawaitable(got):
                    await got
            return None
        return await arun_op(self._tracker.guard, op)


@dataclass(frozen=True)
class _Publish:
    """Op: record a verdict and call ``on_verdict``."""

    verdict: RunVerdict


class _ReadOnly(Mapping[UUID, RunVerdict]):
    __slots__ = ("_data",)

    def __init__(self, data: Mapping[UUID, RunVerdict]) -> None:
        self._data = data

    def __getitem__(self, key: UUID) -> RunVerdict:
        return self._data[key]

    def __iter__(self) -> Iterator[UUID]:
        return iter(list(self._data))

    def __len__(self) -> int:
        return len(self._data)


class NoRefusalCallbackHandler(_HandlerBase, BaseCallbackHandler):
    """Scans every model run it is attached to and applies a policy (the default handler).

    Pairs each prompt with its run by ``run_id``, so one handler serves concurrent runs. At
    ``on_llm_end`` every generation is checked (a provider refusal signal, such as a refusal
    content block or ``additional_kwargs["refusal"]``, decides without the classifier); with
    streaming, ``on_llm_new_token`` feeds a per-run monitor so a refusal stops the stream at
    once under a raising policy. A callback only observes: retry and fallback policies apply
    their ``final_action``, and ``replace`` is recorded (``RunVerdict.replacement``), not
    applied; use :class:`NoRefusalGuard` or :class:`NoRefusalMiddleware` to change outputs.

    Verdicts are in :attr:`results` (by ``run_id``, bounded) and passed to ``on_verdict``.
    Per-run state lives only between a run's start and its end or error. An ``on_llm_end``
    for a run whose start was never seen is scanned with an empty prompt
    (``RunVerdict.prompt_known`` is ``False``); tokens for such a run are ignored.

    Args:
        policy: a :class:`~norefusal.policies.Policy`, a built-in policy name, or ``None``
            (the ``monitor`` policy: flag only).
        guard: a ready :class:`~norefusal.policies.Guard` to share, instead of the options
            above and below.
        scanner: the :class:`~norefusal.NoRefusalScanner` to use (default: built from the
            policy).
        on_decision: called with every :class:`~norefusal.policies.DecisionEvent`.
        on_verdict: called with each run's :class:`RunVerdict` (before a raise).
        max_results: verdicts kept in :attr:`results`; 0 keeps none.
    """

    def __init__(
        self,
        policy: PolicyLike = None,
        *,
        guard: Guard | None = None,
        scanner: NoRefusalScanner | None = None,
        on_decision: Callable[[DecisionEvent], Any] | None = None,
        on_verdict: Callable[[RunVerdict], Any] | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
    ) -> None:
        self._setup(
            policy,
            guard=guard,
            scanner=scanner,
            on_decision=on_decision,
            on_verdict=on_verdict,
            max_results=max_results,
        )

    def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        self._chat_start(messages, run_id)

    def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self._llm_start(prompts, run_id)

    def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        drive(self._token_flow(token, chunk, run_id), self._do)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        drive(self._end_flow(response, run_id), self._do)

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._tracker.drop(run_id)


def _first(run: _Run) -> str:
    return run.prompts[0] if run.prompts else ""


class AsyncNoRefusalCallbackHandler(_HandlerBase, AsyncCallbackHandler):
    """:class:`NoRefusalCallbackHandler` for async code: checks never block the event loop.

    Same options, verdicts and behaviour, with ``on_verdict`` and ``on_decision`` allowed to be
    coroutine functions. **Caveat:** when a model with this handler is invoked synchronously
    (``invoke``, ``stream``, ``batch``), LangChain runs its coroutines on a private loop and
    logs and swallows their exceptions, so a raising policy does not stop the run. Use the sync
    handler (which works in both) unless every call is ``ainvoke``/``astream``/``abatch``.
    """

    def __init__(
        self,
        policy: PolicyLike = None,
        *,
        guard: Guard | None = None,
        scanner: NoRefusalScanner | None = None,
        on_decision: Callable[[DecisionEvent], Any] | None = None,
        on_verdict: Callable[[RunVerdict], Any] | None = None,
        max_results: int = DEFAULT_MAX_RESULTS,
    ) -> None:
        self._setup(
            policy,
            guard=guard,
            scanner=scanner,
            on_decision=on_decision,
            on_verdict=on_verdict,
            max_results=max_results,
        )

    async def on_chat_model_start(
        self,
        serialized: dict[str, Any],
        messages: list[list[BaseMessage]],
        *,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        self._chat_start(messages, run_id)

    async def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: UUID, **kwargs: Any
    ) -> None:
        self._llm_start(prompts, run_id)

    async def on_llm_new_token(
        self,
        token: str | list[str | dict[str, Any]],
        *,
        chunk: Any = None,
        run_id: UUID,
        **kwargs: Any,
    ) -> None:
        await adrive(self._token_flow(token, chunk, run_id), self._ado)

    async def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        await adrive(self._end_flow(response, run_id), self._ado)

    async def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._tracker.drop(run_id)
