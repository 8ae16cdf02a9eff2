"""The decision logic, written once and free of I/O.

:func:`decide` turns (policy, results, state) into the next step. :func:`check_flow` and
:func:`run_flow` are generators that *yield* the I/O they need (a classifier call, a model
call, an event to emit) and receive its result, so that the sync and async drivers in
``_guard`` only perform I/O, as httpx drives its auth flows.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import Any, TypeAlias, TypeVar

from norefusal import ConfigurationError, ModelLoadError, RefusalDetected, ScanResult, Signal
from norefusal._text import clean_text

from ._events import DecisionEvent, Metrics
from ._model import Action, AllowPattern, OnError, Policy
from ._regex import compile_allow_pattern
from ._types import Candidate, FallbackRequest, Outcome, RetryRequest

__all__ = [
    "DEFAULT_BLOCK_MESSAGE",
    "CallAgain",
    "CallFallback",
    "Classify",
    "Context",
    "Emit",
    "EngineState",
    "Step",
    "allowlisted",
    "check_flow",
    "decide",
    "hash_sample",
    "run_flow",
    "stream_decision",
]

R = TypeVar("R")

#: Shown instead of an output that could not be checked under ``on_error: block``, when the
#: policy has no ``replacement``.
DEFAULT_BLOCK_MESSAGE = "This response was withheld because it could not be checked."


# -- effects: what the flows ask their driver to do ------------------------------------------


@dataclass(frozen=True)
class Classify:
    """Score ``texts`` with the scanner, bounded by ``timeout_s``; send back one
    :class:`ScanResult` or exception per text."""

    prompt: str
    texts: tuple[str, ...]
    timeout_s: float


@dataclass(frozen=True)
class CallAgain:
    """Call ``call_again(request)``; send back the new response."""

    request: RetryRequest


@dataclass(frozen=True)
class CallFallback:
    """Call ``call_fallback(request)``; send back the new response."""

    request: FallbackRequest


@dataclass(frozen=True)
class Emit:
    """Record ``event`` (log, metrics) and pass it to ``on_decision``; send back ``None``."""

    event: DecisionEvent


Effect: TypeAlias = Classify | CallAgain | CallFallback | Emit


@dataclass(frozen=True)
class Context:
    """What a flow needs besides the policy: values for results the classifier did not make."""

    policy: Policy
    threshold: float
    model: str
    metrics: Metrics
    sampler: Callable[[str], float]


# -- pure pieces -----------------------------------------------------------------------------


def hash_sample(text: str) -> float:
    """A number in [0, 1) fixed by ``text``: the same output is always sampled the same way."""
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64


#: Longest text the allow-list is tried on: block messages are short, and a bound keeps the
#: cost of a check's regexes small whatever the output.
ALLOWLIST_MAX_CHARS = 4000


def allowlisted(policy: Policy, text: str, *, deadline: float | None = None) -> bool:
    """Whether ``text`` is one of the policy's known guardrail block messages.

    Regexes run on RE2 (linear time, each bounded in size, see ``_regex``), and none is
    started after ``deadline`` (``time.monotonic()``; default: ``policy.timeout_s`` from
    now): a text the remaining ones would match is then not allow-listed, and the classifier
    decides. So the allow-list never holds a caller past ``timeout_s`` by more than one match.
    """
    stripped = text.strip()
    if not policy.allowlist or len(stripped) > ALLOWLIST_MAX_CHARS:
        return False
    if any(isinstance(entry, str) and entry.strip() == stripped for entry in policy.allowlist):
        return True
    if deadline is None:
        deadline = time.monotonic() + policy.timeout_s
    stripped = clean_text(stripped)  # RE2 reads UTF-8, which has no lone surrogates
    for entry in policy.allowlist:
        if isinstance(entry, AllowPattern):
            if time.monotonic() > deadline:
                return False
            pattern = compile_allow_pattern(entry.regex, ignore_case=entry.ignore_case)
            if pattern.fullmatch(stripped) is not None:
                return True
    return False


def could_become_allowlisted(policy: Policy, partial: str) -> bool:
    """Whether a partial stream could still grow into an exact allow-listed message."""
    stripped = partial.strip()
    return any(
        isinstance(entry, str) and entry.strip().startswith(stripped) for entry in policy.allowlist
    )


def _verdict(
    ctx: Context, output: str, signal: Signal, *, refusal: bool, detail: str | None = None
) -> ScanResult:
    return ScanResult(
        output,
        score=1.0 if refusal else 0.0,
        threshold=ctx.threshold,
        signal=signal,
        model=ctx.model,
        is_refusal=refusal,
        detail=detail,
    )


def sampled_in(ctx: Context, text: str) -> bool:
    """Whether sampling lets the classifier scan ``text``."""
    rate = ctx.policy.sample_rate
    return rate >= 1.0 or ctx.sampler(text) < rate


def skipped(ctx: Context, text: str) -> ScanResult:
    """The verdict on a text that sampling left unscanned: not a refusal."""
    return _verdict(ctx, text, Signal.SKIPPED, refusal=False, detail="sampled out")


def precheck(
    ctx: Context, candidate: Candidate, *, sample: bool = True, deadline: float | None = None
) -> ScanResult | None:
    """Decide ``candidate`` without the classifier where possible; ``None`` means: classify it.

    Order: a provider refusal (unless allow-listed), empty text, the allow-list (no regex
    started after ``deadline``), sampling (unless ``sample`` is false: the caller sampled).
    """
    policy = ctx.policy
    text = candidate.text or ""
    if candidate.refusal:
        if allowlisted(policy, candidate.refusal, deadline=deadline) or (
            text and allowlisted(policy, text, deadline=deadline)
        ):
            return _verdict(ctx, text or candidate.refusal, Signal.ALLOWLIST, refusal=False)
        detail = candidate.detail or "provider"
        return _verdict(
            ctx, text or candidate.refusal, Signal.PROVIDER, refusal=True, detail=detail
        )
    if not text.strip():
        return _verdict(ctx, text, Signal.EMPTY, refusal=False)
    if allowlisted(policy, text, deadline=deadline):
        return _verdict(ctx, text, Signal.ALLOWLIST, refusal=False)
    if sample and not sampled_in(ctx, text):
        return skipped(ctx, text)
    return None


def error_result(ctx: Context, text: str, error: BaseException) -> ScanResult:
    """The verdict when the classifier raised or timed out: ``on_error`` decides.

    ``detail`` names the exception type only; its message may quote the text.
    """
    detail = "timeout" if isinstance(error, TimeoutError) else f"error:{type(error).__name__}"
    block = ctx.policy.on_error is OnError.BLOCK
    return _verdict(ctx, text, Signal.ERROR, refusal=block, detail=detail)


@dataclass(frozen=True)
class EngineState:
    """Where a run stands: which response is being decided and what was already tried."""

    attempt: int = 1
    retries: int = 0
    fallbacks: int = 0


@dataclass(frozen=True)
class Step:
    """The next step of a run.

    Attributes:
        action: ``"pass"``, ``"flag"``, ``"raise"``, ``"replace"``, ``"retry"``,
            ``"fallback"`` or ``"block"``.
        refused: indices of the refused candidates.
        decisive: index of the decisive result.
        request: the request for ``"retry"`` / ``"fallback"``.
    """

    action: str
    refused: tuple[int, ...]
    decisive: int
    request: RetryRequest | FallbackRequest | None = None


def decisive_index(results: Sequence[ScanResult]) -> int:
    """Index of the result that decides: a refusal first, then the highest score."""
    return max(range(len(results)), key=lambda i: (results[i].is_refusal, results[i].score))


def decide(policy: Policy, results: Sequence[ScanResult], state: EngineState) -> Step:
    """The next step for a response whose candidates got ``results``.

    A response is refused when any candidate is. A refusal that only the scanner's failure
    made (``on_error: block``) is not retried: the terminal action applies, and unless it is
    ``raise`` the output is withheld (``"block"``). Otherwise retry while retries remain,
    then fall back once if a fallback model is set, then apply ``final_action``.
    """
    if not results:
        raise ValueError("decide() needs at least one result.")
    refused = tuple(i for i, r in enumerate(results) if r.is_refusal)
    decisive = decisive_index(results)
    if not refused:
        return Step("pass", refused, decisive)
    terminal = policy.terminal_action
    if all(results[i].signal is Signal.ERROR for i in refused):
        return Step("raise" if terminal is Action.RAISE else "block", refused, decisive)
    if policy.action is Action.RETRY and state.retries < policy.retries:
        request = RetryRequest(attempt=state.retries + 1, instruction=policy.retry_instruction)
        return Step("retry", refused, decisive, request)
    if (
        policy.action in (Action.RETRY, Action.FALLBACK)
        and policy.fallback_model is not None
        and state.fallbacks == 0
    ):
        fallback = FallbackRequest(model=policy.fallback_model, attempt=state.fallbacks + 1)
        return Step("fallback", refused, decisive, fallback)
    return Step(terminal.value, refused, decisive)


def stream_decision(policy: Policy, result: ScanResult) -> str:
    """The action on a stream verdict: a stream cannot be restarted, so retry and fallback
    apply ``final_action``; a blocked scanner error withholds the output (``"block"``)."""
    if not result.is_refusal:
        return "pass"
    terminal = policy.terminal_action
    if result.signal is Signal.ERROR and terminal is not Action.RAISE:
        return "block"
    return terminal.value


def required_callables(policy: Policy) -> dict[str, str]:
    """The ``run`` arguments a policy may need, each with the reason."""
    needs: dict[str, str] = {}
    if policy.action is Action.RETRY and policy.retries > 0:
        needs["call_again"] = "it retries on a refusal"
    if policy.action in (Action.RETRY, Action.FALLBACK) and policy.fallback_model is not None:
        needs["call_fallback"] = "it falls back to another model on a refusal"
    terminal = policy.terminal_action
    if terminal is Action.REPLACE:
        needs["replace"] = "it replaces a refusal with a message"
    elif policy.on_error is OnError.BLOCK and terminal is not Action.RAISE:
        needs["replace"] = "it withholds output the scanner could not check (on_error: block)"
    return needs


def make_event(
    ctx: Context,
    *,
    action: str,
    stage: str,
    results: Sequence[ScanResult],
    latency_ms: float,
    attempt: int,
    prompt: str,
) -> DecisionEvent:
    """The event for one decision; text only when the policy sets ``log_text``."""
    result = results[decisive_index(results)]
    text = ctx.policy.log_text
    return DecisionEvent(
        policy=ctx.policy.name,
        action=action,
        stage=stage,
        score=result.score,
        is_refusal=result.is_refusal,
        signal=result.signal.value,
        detail=result.detail,
        latency_ms=latency_ms,
        attempt=attempt,
        model=result.model,
        candidates=len(results),
        refused=sum(r.is_refusal for r in results),
        prompt=prompt if text else None,
        output=result.sanitized if text else None,
    )


def count_results(metrics: Metrics, results: Sequence[ScanResult]) -> None:
    """Add checked results to the counters; a scanner error counts apart from refusals."""
    signals = [r.signal for r in results]
    errors = [r for r in results if r.signal is Signal.ERROR]
    metrics.add(
        scans=len(results),
        refusals=sum(r.is_refusal for r in results if r.signal is not Signal.ERROR),
        provider=signals.count(Signal.PROVIDER),
        allowlisted=signals.count(Signal.ALLOWLIST),
        skipped=signals.count(Signal.SKIPPED),
        errors=len(errors),
        errors_blocked=sum(r.is_refusal for r in errors),
    )


# -- flows -----------------------------------------------------------------------------------


def check_flow(
    ctx: Context,
    prompt: str,
    candidates: Sequence[Candidate],
    *,
    count: bool = True,
    sample: bool = True,
) -> Generator[Effect, Any, tuple[ScanResult, ...]]:
    """Check every candidate: prechecks here, the classifier through a :class:`Classify`.

    One check waits at most ``timeout_s``: the allow-list's regexes and the classifier share it.
    """
    deadline = time.monotonic() + ctx.policy.timeout_s
    found = [precheck(ctx, c, sample=sample, deadline=deadline) for c in candidates]
    pending = [i for i, r in enumerate(found) if r is None]
    if pending:
        texts = tuple(candidates[i].text or "" for i in pending)
        remaining = max(0.0, deadline - time.monotonic())
        scored = yield Classify(prompt, texts, remaining)
        for i, text, got in zip(pending, texts, scored, strict=True):
            if isinstance(got, (ConfigurationError, ModelLoadError)):
                # Misconfiguration (a missing model or extra) is not a transient failure for
                # on_error to hide: it fails every call, loudly, until fixed.
                raise got
            found[i] = got if isinstance(got, ScanResult) else error_result(ctx, text, got)
    results = tuple(r for r in found if r is not None)
    if count:
        count_results(ctx.metrics, results)
    return results


def _as_candidates(got: Sequence[Candidate]) -> list[Candidate]:
    candidates = list(got)
    for c in candidates:
        if not isinstance(c, Candidate):
            raise TypeError(f"candidates() must return Candidate objects, got {type(c).__name__}.")
    return candidates or [Candidate(None)]


def run_flow(
    ctx: Context,
    prompt: str,
    response: R,
    *,
    candidates: Callable[[R], Sequence[Candidate]],
    replace_fn: Callable[[R, Sequence[int], str], R] | None,
    given: frozenset[str],
) -> Generator[Effect, Any, Outcome[R]]:
    """Run the policy on ``response``: check, decide, act, until an outcome."""
    policy = ctx.policy
    for name, why in required_callables(policy).items():
        if name not in given:
            raise ConfigurationError(
                f"The policy {policy.name!r} needs {name}= because {why}; pass {name} to "
                f"run()/arun() or choose a policy whose action does not need it."
            )
    original = response
    state = EngineState()
    while True:
        started = time.perf_counter()
        results = yield from check_flow(ctx, prompt, _as_candidates(candidates(response)))
        latency_ms = (time.perf_counter() - started) * 1000.0
        step = decide(policy, results, state)
        yield Emit(
            make_event(
                ctx,
                action=step.action,
                stage="run",
                results=results,
                latency_ms=latency_ms,
                attempt=state.attempt,
                prompt=prompt,
            )
        )
        first = None if response is original else original
        if step.action == "pass":
            action = "pass" if state.attempt == 1 else "fallback" if state.fallbacks else "retry"
            return Outcome(response, results, action, state.attempt, False, first)
        if step.action == "flag":
            return Outcome(response, results, "flag", state.attempt, True, first)
        if step.action == "raise":
            decisive = results[step.decisive]
            raise RefusalDetected(
                decisive, prompt=prompt, output=decisive.sanitized, policy=policy.name
            )
        if step.action in ("replace", "block"):
            assert replace_fn is not None  # checked by required_callables
            message = policy.replacement or DEFAULT_BLOCK_MESSAGE
            replaced = replace_fn(response, step.refused, message)
            return Outcome(replaced, results, step.action, state.attempt, True, original)
        if isinstance(step.request, RetryRequest):
            response = yield CallAgain(step.request)
            state = replace(state, attempt=state.attempt + 1, retries=state.retries + 1)
        elif isinstance(step.request, FallbackRequest):
            response = yield CallFallback(step.request)
            state = replace(state, attempt=state.attempt + 1, fallbacks=state.fallbacks + 1)
        else:  # pragma: no cover - decide() returns no other step
            raise AssertionError(f"unexpected step {step!r}")
