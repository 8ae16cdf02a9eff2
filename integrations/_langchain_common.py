"""What the LangChain handlers, guard and middleware share: a Guard, the decisive result."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from norefusal import ConfigurationError, RefusalDetected
from norefusal.policies import Action, Candidate, Guard, GuardMonitor, Policy

if TYPE_CHECKING:
    from norefusal import NoRefusalScanner, ScanResult
    from norefusal.policies import DecisionEvent

T = TypeVar("T")

__all__ = [
    "Check",
    "CheckAll",
    "Decide",
    "Feed",
    "Finish",
    "PolicyLike",
    "adrive",
    "arun_op",
    "decisive",
    "drive",
    "may_raise",
    "resolve_guard",
    "run_op",
]

#: What the integration accepts as a policy: a Policy, a built-in policy name, or None (monitor).
PolicyLike = Policy | str | None


def resolve_guard(
    policy: PolicyLike,
    *,
    guard: Guard | None,
    scanner: NoRefusalScanner | None,
    on_decision: Callable[[DecisionEvent], Any] | None,
    owner: str,
) -> Guard:
    """The :class:`Guard` an integration object uses: the one given, or one built from options.

    Raises:
        ConfigurationError: ``guard`` was given together with ``policy``, ``scanner`` or
            ``on_decision`` (which the guard already fixes).
    """
    if guard is None:
        return Guard(policy, scanner=scanner, on_decision=on_decision)
    if not isinstance(guard, Guard):
        raise ConfigurationError(
            f"{owner}: guard must be a norefusal.policies.Guard, got {type(guard).__name__}."
        )
    if policy is not None or scanner is not None or on_decision is not None:
        raise ConfigurationError(
            f"{owner}: pass either guard=... or policy/scanner/on_decision, not both; "
            "the guard already holds its policy, scanner and decision hook."
        )
    return guard


def may_raise(guard: Guard) -> bool:
    """Whether a refusal can end in :class:`~norefusal.RefusalDetected` under the guard's policy.

    A callback cannot retry, fall back or rewrite the output it observes, so for callbacks a
    retry or fallback policy ends in its ``final_action`` at once.
    """
    return guard.policy.terminal_action is Action.RAISE


def decisive(results: Sequence[ScanResult]) -> int:
    """Index of the result that decides: the highest-scoring refusal, else the highest score."""
    if not results:
        raise ValueError("decisive() needs at least one result.")
    return max(range(len(results)), key=lambda i: (results[i].is_refusal, results[i].score))


# -- one flow, two drivers ---------------------------------------------------------------
# The handlers' and the guard's stream logic is written once, as generators that yield the
# I/O they need (an op below) and get its result sent back; a sync and an async driver run
# the ops. A RefusalDetected from an op is thrown back into the flow, which records it and
# re-raises it in LangChain's form.


@dataclass(frozen=True)
class Check:
    """Op: ``guard.check(prompt, candidate)`` -> ScanResult."""

    prompt: str
    candidate: Candidate


@dataclass(frozen=True)
class CheckAll:
    """Op: check every ``(prompt, candidate)`` -> list[ScanResult] (concurrently when async)."""

    pairs: Sequence[tuple[str, Candidate]]


@dataclass(frozen=True)
class Feed:
    """Op: ``monitor.feed(delta)`` -> ScanResult | None."""

    monitor: GuardMonitor
    delta: str


@dataclass(frozen=True)
class Finish:
    """Op: ``monitor.finish()`` -> ScanResult."""

    monitor: GuardMonitor


@dataclass(frozen=True)
class Decide:
    """Op: ``guard.stream_verdict(prompt, text, result)`` -> StreamAction (may raise)."""

    prompt: str
    text: str
    result: ScanResult


def run_op(guard: Guard, op: object) -> Any:
    """Run one op synchronously."""
    if isinstance(op, Check):
        return guard.check(op.prompt, op.candidate)
    if isinstance(op, CheckAll):
        return [guard.check(p, c) for p, c in op.pairs]
    if isinstance(op, Feed):
        return op.monitor.feed(op.delta)
    if isinstance(op, Finish):
        return op.monitor.finish()
    if isinstance(op, Decide):
        return guard.stream_verdict(op.prompt, op.text, op.result)
    raise TypeError(f"unknown op {type(op).__name__}")


async def arun_op(guard: Guard, op: object) -> Any:
    """Run one op without blocking the event loop."""
    if isinstance(op, Check):
        return await guard.acheck(op.prompt, op.candidate)
    if isinstance(op, CheckAll):
        return list(await asyncio.gather(*(guard.acheck(p, c) for p, c in op.pairs)))
    if isinstance(op, Feed):
        return await op.monitor.afeed(op.delta)
    if isinstance(op, Finish):
        return await op.monitor.afinish()
    if isinstance(op, Decide):
        return await guard.astream_verdict(op.prompt, op.text, op.result)
    raise TypeError(f"unknown op {type(op).__name__}")


def drive(flow: Generator[object, Any, T], do: Callable[[object], Any]) -> T:
    """Run ``flow`` to its return value, doing each op it yields with ``do``."""
    value: Any = None
    error: RefusalDetected | None = None
    while True:
        try:
            op = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        try:
            value = do(op)
        except RefusalDetected as exc:
            error = exc


async def adrive(flow: Generator[object, Any, T], ado: Callable[[object], Awaitable[Any]]) -> T:
    """:func:`drive` with an async ``ado``."""
    value: Any = None
    error: RefusalDetected | None = None
    while True:
        try:
            op = flow.send(value) if error is None else flow.throw(error)
        except StopIteration as stop:
            result: T = stop.value
            return result
        value, error = None, None
        try:
            value = await ado(op)
        except RefusalDetected as exc:
            error = exc
