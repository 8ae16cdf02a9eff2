"""Guard: runs a Policy around model calls; its sync and async drivers only do I/O."""

from __future__ import annotations

import asyncio
import inspect
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from norefusal import PRESETS, NoRefusalScanner, RefusalDetected, ScanResult, Signal
from norefusal._text import check_text

from . import _pool
from ._engine import (
    DEFAULT_BLOCK_MESSAGE,
    CallAgain,
    Classify,
    Context,
    Effect,
    Emit,
    allowlisted,
    check_flow,
    count_results,
    hash_sample,
    make_event,
    run_flow,
    stream_decision,
)
from ._events import ACTION_COUNTER, DecisionEvent, Metrics, log_event, logger
from ._model import Policy
from ._monitor import GuardMonitor
from ._types import Candidate, FallbackRequest, Outcome, RetryRequest, ScannerLike, StreamAction

__all__ = ["Guard"]

R = TypeVar("R")
T = TypeVar("T")

DecisionHook = Callable[[DecisionEvent], "Awaitable[None] | None"]


def _prompt_text(prompt: object) -> str:
    # Checked at every door, before anything runs: a wrong argument (OpenAI ``messages`` as
    # the prompt) would otherwise reach the scanner, whose TypeError the flow takes for a
    # scanner failure that ``on_error`` decides, so misuse would fail open (or raise as a
    # refusal "decided by error").
    return check_text(prompt, "prompt")


def _scan_all(scanner: ScannerLike, prompt: str, texts: tuple[str, ...]) -> list[object]:
    out: list[object] = []
    for text in texts:
        try:
            out.append(scanner.scan(prompt, text))
        except Exception as exc:  # the policy's on_error decides
            out.append(exc)
    return out


def _timeout_error(timeout_s: float) -> TimeoutError:
    # The time left of the check's timeout_s, after the allow-list had its share.
    return TimeoutError(f"The scanner did not answer within the {timeout_s:.3g} s left.")


class Guard:
    """Applies a :class:`Policy` to model responses: check, decide, act, record.

    Construction is cheap: the scanner is built from ``policy.scanner`` at first use (and its
    model loads at its first scan) unless one is given. A Guard holds no per-call state and is
    safe to share between threads and coroutines.

    Every classifier call runs on a small shared pool of worker threads and the caller waits at
    most ``policy.timeout_s``; then ``policy.on_error`` decides. A hung backend call cannot be
    killed: it keeps its worker thread (the pool is bounded, so hangs never add threads beyond
    it) while callers go on. The first scan also loads the model, within the same timeout:
    call :meth:`warm_up` at startup to load it beforehand.

    Args:
        policy: a :class:`Policy`, the name of a built-in one, or ``None`` for ``"monitor"``.
        scanner: the scanner to use (a :class:`~norefusal.NoRefusalScanner`, or any object
            with the same ``scan(prompt, output)``), instead of building one from
            ``policy.scanner`` (whose settings are then unused).
        on_decision: called with every :class:`DecisionEvent`; sync or async. An exception it
            raises is logged and never changes the decision.
        sampler: maps an output text to a number in [0, 1); the text is scanned when it is
            below ``policy.sample_rate``. Defaults to a hash of the text (deterministic).
    """

    def __init__(
        self,
        policy: Policy | str | None = None,
        *,
        scanner: ScannerLike | None = None,
        on_decision: DecisionHook | None = None,
        sampler: Callable[[str], float] | None = None,
    ) -> None:
        if policy is None:
            policy = Policy.builtin("monitor")
        elif isinstance(policy, str):
            policy = Policy.builtin(policy)
        elif not isinstance(policy, Policy):
            raise TypeError(
                f"policy must be a Policy, a built-in policy name or None, "
                f"got {type(policy).__name__}."
            )
        if on_decision is not None and not callable(on_decision):
            raise TypeError("on_decision must be callable.")
        self._policy = policy
        self._scanner = scanner
        self._scanner_lock = threading.Lock()
        self._on_decision = on_decision
        self._sampler = sampler or hash_sample
        self.metrics = Metrics()

    def __repr__(self) -> str:
        return f"Guard(policy={self._policy.name!r}, action={self._policy.action.value!r})"

    @property
    def policy(self) -> Policy:
        return self._policy

    @property
    def scanner(self) -> ScannerLike:
        """The scanner in use; built from ``policy.scanner`` on first access (no model load)."""
        scanner = self._scanner
        if scanner is None:
            with self._scanner_lock:
                scanner = self._scanner
                if scanner is None:
                    settings = self._policy.scanner
                    scanner = self._scanner = NoRefusalScanner(
                        model=settings.model,
                        backend=settings.backend,
                        threshold=settings.threshold,
                        match=settings.match,
                        max_tokens=settings.max_tokens,
                    )
        return scanner

    def warm_up(self) -> None:
        """Build the scanner and load its model now, without a timeout."""
        load = getattr(self.scanner, "load", None)
        if callable(load):
            load()

    # -- shared pieces ---------------------------------------------------------------------

    def _context(self) -> Context:
        settings = self._policy.scanner
        # Results the classifier did not make (a provider signal, the allow-list, an error)
        # carry the scanner's threshold and model: building the scanner resolves them (the
        # embedded model's calibrated threshold comes from its norefusal.json) without loading
        # the model, so they are right from the first call, not a preset's placeholder.
        scanner = self.scanner
        threshold = getattr(scanner, "threshold", None)
        model = getattr(scanner, "model_name", None)
        if not isinstance(threshold, float):  # a scanner of the caller's own, without one
            preset = PRESETS.get(settings.model)
            threshold = settings.threshold or (preset.threshold if preset else 0.5)
        if not isinstance(model, str):
            model = settings.model
        return Context(self._policy, threshold, model, self.metrics, self._sampler)

    def _record(self, event: DecisionEvent) -> None:
        log_event(event)
        counter = ACTION_COUNTER.get(event.action)
        self.metrics.add(decisions=1, **({counter: 1} if counter else {}))

    def _hook_failed(self, exc: BaseException) -> None:
        logger.error(
            "on_decision raised %s; the decision stands.", type(exc).__name__, exc_info=exc
        )

    def _emit_sync(self, event: DecisionEvent) -> None:
        self._record(event)
        if self._on_decision is None:
            return
        try:
            got = self._on_decision(event)
            if inspect.isawaitable(got):
                self._await_from_sync(got)
        except Exception as exc:
            self._hook_failed(exc)

    @staticmethod
    def _await_from_sync(awaitable: Awaitable[Any]) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:

            async def wait() -> None:
                await awaitable

            asyncio.run(wait())
            return
        # A sync call on an event loop's thread cannot wait for a coroutine.
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        raise RuntimeError(
            "an async on_decision cannot run from a sync call inside a running event loop; "
            "use the async methods (acheck, arun, astream_verdict) there."
        )

    async def _emit_async(self, event: DecisionEvent) -> None:
        self._record(event)
        if self._on_decision is None:
            return
        try:
            got = self._on_decision(event)
            if inspect.isawaitable(got):
                await got
        except Exception as exc:
            self._hook_failed(exc)

    def _classify_sync(self, effect: Classify) -> list[object]:
        future = _pool.submit(_scan_all, self.scanner, effect.prompt, effect.texts)
        try:
            return future.result(timeout=effect.timeout_s)
        except FutureTimeout:
            future.cancel()
            return [_timeout_error(effect.timeout_s)] * len(effect.texts)

    async def _classify_async(self, effect: Classify) -> list[object]:
        future = _pool.submit(_scan_all, self.scanner, effect.prompt, effect.texts)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), effect.timeout_s)
        except asyncio.TimeoutError:
            future.cancel()
            return [_timeout_error(effect.timeout_s)] * len(effect.texts)

    # -- drivers ---------------------------------------------------------------------------

    def _drive(
        self,
        flow: Generator[Effect, Any, T],
        call_again: Callable[[RetryRequest], Any] | None = None,
        call_fallback: Callable[[FallbackRequest], Any] | None = None,
    ) -> T:
        sent: Any = None
        try:
            while True:
                effect = flow.send(sent)
                if isinstance(effect, Classify):
                    sent = self._classify_sync(effect)
                elif isinstance(effect, Emit):
                    self._emit_sync(effect.event)
                    sent = None
                elif isinstance(effect, CallAgain):
                    assert call_again is not None
                    sent = call_again(effect.request)
                else:
                    assert call_fallback is not None
                    sent = call_fallback(effect.request)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    async def _adrive(
        self,
        flow: Generator[Effect, Any, T],
        call_again: Callable[[RetryRequest], Awaitable[Any]] | None = None,
        call_fallback: Callable[[FallbackRequest], Awaitable[Any]] | None = None,
    ) -> T:
        sent: Any = None
        try:
            while True:
                effect = flow.send(sent)
                if isinstance(effect, Classify):
                    sent = await self._classify_async(effect)
                elif isinstance(effect, Emit):
                    await self._emit_async(effect.event)
                    sent = None
                elif isinstance(effect, CallAgain):
                    assert call_again is not None
                    sent = await _maybe_await(call_again(effect.request))
                else:
                    assert call_fallback is not None
                    sent = await _maybe_await(call_fallback(effect.request))
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        finally:
            flow.close()

    # -- checks ----------------------------------------------------------------------------

    def _check_flow(self, prompt: str, candidate: Candidate) -> Generator[Effect, Any, ScanResult]:
        if not isinstance(candidate, Candidate):
            raise TypeError(f"candidate must be a Candidate, got {type(candidate).__name__}.")
        ctx = self._context()
        started = time.perf_counter()
        (result,) = yield from check_flow(ctx, prompt, [candidate])
        latency_ms = (time.perf_counter() - started) * 1000.0
        yield Emit(
            make_event(
                ctx,
                action="check",
                stage="check",
                results=[result],
                latency_ms=latency_ms,
                attempt=1,
                prompt=prompt,
            )
        )
        return result

    def check(self, prompt: str | None, candidate: Candidate) -> ScanResult:
        """Check one candidate; decide nothing beyond the verdict.

        Order: a provider refusal (``Signal.PROVIDER``, score 1.0) unless allow-listed, empty
        text (``EMPTY``), the allow-list (``ALLOWLIST``), sampling (``SKIPPED``), then the
        classifier within ``policy.timeout_s``. If it raises or times out, ``on_error``
        decides: ``allow`` gives a valid result, ``block`` a refusal, both ``Signal.ERROR``.
        Emits one ``"check"`` event.

        Raises:
            TypeError: ``prompt`` is not a str or ``None``, or ``candidate`` not a
                :class:`Candidate`: at once, never decided by ``on_error``.
        """
        return self._drive(self._check_flow(_prompt_text(prompt), candidate))

    async def acheck(self, prompt: str | None, candidate: Candidate) -> ScanResult:
        """:meth:`check` without blocking the event loop."""
        return await self._adrive(self._check_flow(_prompt_text(prompt), candidate))

    # -- runs ------------------------------------------------------------------------------

    def run(
        self,
        prompt: str | None,
        response: R,
        *,
        candidates: Callable[[R], Sequence[Candidate]],
        call_again: Callable[[RetryRequest], R] | None = None,
        call_fallback: Callable[[FallbackRequest], R] | None = None,
        replace: Callable[[R, Sequence[int], str], R] | None = None,
    ) -> Outcome[R]:
        """Apply the policy to ``response``.

        Checks every candidate (``candidates(response)``); a response is refused when any is.
        Then: ``flag`` passes it through marked; ``raise`` raises
        :class:`~norefusal.RefusalDetected`; ``replace`` returns ``replace(response,
        refused_indices, policy.replacement)``; ``retry`` calls ``call_again`` up to
        ``policy.retries`` times; ``fallback`` (or a retry policy with ``fallback_model``)
        calls ``call_fallback`` once; then ``final_action``. Every response is checked and every
        decision emits an event.

        Raises:
            RefusalDetected: the policy raises on this refusal.
            ConfigurationError: the policy needs a callable that was not given (checked first,
                whether or not the response is a refusal).
            TypeError: ``prompt`` is not a str or ``None`` (checked first, too).
        """
        prompt = _prompt_text(prompt)
        given = _given(call_again=call_again, call_fallback=call_fallback, replace=replace)
        flow = run_flow(
            self._context(),
            prompt,
            response,
            candidates=candidates,
            replace_fn=replace,
            given=given,
        )
        return self._drive(flow, call_again, call_fallback)

    async def arun(
        self,
        prompt: str | None,
        response: R,
        *,
        candidates: Callable[[R], Sequence[Candidate]],
        call_again: Callable[[RetryRequest], Awaitable[R]] | None = None,
        call_fallback: Callable[[FallbackRequest], Awaitable[R]] | None = None,
        replace: Callable[[R, Sequence[int], str], R] | None = None,
    ) -> Outcome[R]:
        """:meth:`run` for async code: ``call_again`` and ``call_fallback`` are awaited."""
        prompt = _prompt_text(prompt)
        given = _given(call_again=call_again, call_fallback=call_fallback, replace=replace)
        flow = run_flow(
            self._context(),
            prompt,
            response,
            candidates=candidates,
            replace_fn=replace,
            given=given,
        )
        return await self._adrive(flow, call_again, call_fallback)

    # -- streams ---------------------------------------------------------------------------

    def monitor(self, prompt: str | None = None) -> GuardMonitor:
        """A per-stream monitor whose scans follow this guard's policy (allow-list, sampling,
        ``timeout_s``, ``on_error``); see :class:`GuardMonitor`."""
        return GuardMonitor(self, _prompt_text(prompt))

    def _stream_flow(
        self, prompt: str | None, output_so_far: str | None, result: ScanResult
    ) -> Generator[Effect, Any, StreamAction]:
        ctx = self._context()
        policy = self._policy
        text = output_so_far or ""
        if (
            result.is_refusal
            and result.signal is Signal.CLASSIFIER
            and text.strip()
            and (allowlisted(policy, text))
        ):
            result = ScanResult(
                text,
                score=0.0,
                threshold=result.threshold,
                signal=Signal.ALLOWLIST,
                model=result.model,
                is_refusal=False,
            )
        count_results(ctx.metrics, [result])
        action = stream_decision(policy, result)
        yield Emit(
            make_event(
                ctx,
                action=action,
                stage="stream",
                results=[result],
                latency_ms=0.0,
                attempt=1,
                prompt=prompt or "",
            )
        )
        if action == "raise":
            raise RefusalDetected(result, prompt=prompt or "", output=text, policy=policy.name)
        if action == "replace":
            return StreamAction("replace", policy.replacement)
        if action == "block":
            return StreamAction("replace", policy.replacement or DEFAULT_BLOCK_MESSAGE)
        return StreamAction("flag" if action == "flag" else "pass")

    def stream_verdict(
        self, prompt: str | None, output_so_far: str | None, result: ScanResult
    ) -> StreamAction:
        """Decide what a stream does after ``result`` (from :meth:`monitor` or a scanner).

        A stream already handed out cannot be retried, so ``retry`` and ``fallback`` apply
        ``final_action``. Emits a ``"stream"`` event and counts the result.

        Raises:
            RefusalDetected: the (final) action is ``raise`` and ``result`` is a refusal.
        """
        return self._drive(self._stream_flow(prompt, output_so_far, result))

    async def astream_verdict(
        self, prompt: str | None, output_so_far: str | None, result: ScanResult
    ) -> StreamAction:
        """:meth:`stream_verdict` for async code (an async ``on_decision`` is awaited)."""
        return await self._adrive(self._stream_flow(prompt, output_so_far, result))


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _given(**callables: object) -> frozenset[str]:
    return frozenset(name for name, fn in callables.items() if fn is not None)
