"""The pure engine, and the sync and async drivers making the same decisions."""

from __future__ import annotations

import asyncio
from dataclasses import replace as dc_replace
from typing import Any

import pytest
from _policy_fakes import (
    ANSWER,
    PROMPT,
    REFUSAL,
    REFUSAL_2,
    CountingScanner,
    RaisingScanner,
    Reply,
    candidates,
    replace,
    reply,
)
from norefusal import RefusalDetected, ScanResult, Signal
from norefusal.policies import (
    Candidate,
    DecisionEvent,
    FallbackRequest,
    Guard,
    Policy,
    RetryRequest,
)
from norefusal.policies._engine import EngineState, decide


def result(refused: bool, *, signal: Signal = Signal.CLASSIFIER, score: float = 0.9) -> ScanResult:
    score = score if refused else 0.1
    return ScanResult("x", score=score, threshold=0.5, signal=signal, is_refusal=refused)


def policy(**fields: Any) -> Policy:
    return Policy.from_dict({"name": "test", **fields})


# -- the pure engine ------------------------------------------------------------------------


def test_decide_walks_retries_then_fallback_then_final_action() -> None:
    p = policy(action="retry", retries=2, fallback_model="backup", final_action="raise")
    refused = [result(False), result(True)]
    state = EngineState()
    steps = []
    for _ in range(4):
        step = decide(p, refused, state)
        steps.append((step.action, step.request))
        if step.action == "retry":
            state = dc_replace(state, attempt=state.attempt + 1, retries=state.retries + 1)
        elif step.action == "fallback":
            state = dc_replace(state, attempt=state.attempt + 1, fallbacks=state.fallbacks + 1)
    assert steps == [
        ("retry", RetryRequest(1, None)),
        ("retry", RetryRequest(2, None)),
        ("fallback", FallbackRequest("backup", 1)),
        ("raise", None),
    ]
    assert decide(p, refused, EngineState()).refused == (1,)
    assert decide(p, refused, EngineState()).decisive == 1


def test_decide_passes_when_nothing_is_refused() -> None:
    step = decide(policy(action="raise"), [result(False), result(False)], EngineState())
    assert (step.action, step.refused) == ("pass", ())


def test_decide_never_retries_a_refusal_made_by_a_scanner_error() -> None:
    blocked = [result(True, signal=Signal.ERROR, score=1.0)]
    retry_raise = policy(action="retry", final_action="raise", on_error="block")
    assert decide(retry_raise, blocked, EngineState()).action == "raise"
    retry_flag = policy(action="retry", on_error="block")
    assert decide(retry_flag, blocked, EngineState()).action == "block"
    # A real refusal beside the error is retried as usual.
    mixed = [*blocked, result(True)]
    assert decide(retry_flag, mixed, EngineState()).action == "retry"


def test_decide_needs_results() -> None:
    with pytest.raises(ValueError, match="at least one"):
        decide(policy(), [], EngineState())


# -- sync and async drivers decide the same -------------------------------------------------


def _comparable(events: list[DecisionEvent]) -> list[tuple[Any, ...]]:
    return [
        (e.policy, e.action, e.stage, e.score, e.signal, e.attempt, e.candidates, e.refused)
        for e in events
    ]


SCENARIOS: list[tuple[dict[str, Any], list[Reply]]] = [
    ({"action": "flag"}, [reply(REFUSAL)]),
    ({"action": "replace", "replacement": "No."}, [reply(ANSWER, REFUSAL)]),
    ({"action": "retry", "retries": 2}, [reply(REFUSAL), reply(REFUSAL_2), reply(ANSWER)]),
    ({"action": "retry", "retries": 1, "final_action": "raise"}, [reply(REFUSAL)] * 2),
    ({"action": "fallback", "fallback_model": "b"}, [reply(REFUSAL), reply(ANSWER)]),
    (
        {"action": "retry", "retries": 1, "fallback_model": "b", "final_action": "replace",
         "replacement": "Sorry."},
        [reply(REFUSAL), reply(REFUSAL_2), reply(REFUSAL)],
    ),
    ({"action": "raise"}, [Reply((None,), refusals=("I won't.",))]),
    ({"action": "raise", "sample_rate": 0.0}, [reply(REFUSAL)]),
    ({"action": "raise", "allowlist": [REFUSAL]}, [reply(REFUSAL)]),
]  # fmt: skip


@pytest.mark.parametrize(("fields", "replies"), SCENARIOS)
async def test_sync_and_async_runs_make_the_same_decisions(
    fields: dict[str, Any], replies: list[Reply]
) -> None:
    p = policy(**fields)

    def sync_run() -> tuple[list[DecisionEvent], Any, list[Any]]:
        events: list[DecisionEvent] = []
        queue = list(replies[1:])
        requests: list[Any] = []

        def call(request: Any) -> Reply:
            requests.append(request)
            return queue.pop(0)

        guard = Guard(p, scanner=CountingScanner(), on_decision=events.append)
        try:
            got: Any = guard.run(
                PROMPT,
                replies[0],
                candidates=candidates,
                call_again=call,
                call_fallback=call,
                replace=replace,
            )
        except RefusalDetected as exc:
            got = ("raised", exc.output, exc.result)
        return events, got, requests

    async def async_run() -> tuple[list[DecisionEvent], Any, list[Any]]:
        events: list[DecisionEvent] = []
        queue = list(replies[1:])
        requests: list[Any] = []

        async def call(request: Any) -> Reply:
            await asyncio.sleep(0)
            requests.append(request)
            return queue.pop(0)

        async def hook(event: DecisionEvent) -> None:
            await asyncio.sleep(0)
            events.append(event)

        guard = Guard(p, scanner=CountingScanner(), on_decision=hook)
        try:
            got: Any = await guard.arun(
                PROMPT,
                replies[0],
                candidates=candidates,
                call_again=call,
                call_fallback=call,
                replace=replace,
            )
        except RefusalDetected as exc:
            got = ("raised", exc.output, exc.result)
        return events, got, requests

    sync_events, sync_got, sync_requests = await asyncio.to_thread(sync_run)
    async_events, async_got, async_requests = await async_run()
    assert _comparable(sync_events) == _comparable(async_events)
    assert sync_events  # every run decides at least once
    assert sync_got == async_got
    assert sync_requests == async_requests  # fmt: skip


@pytest.mark.parametrize("on_error", ["allow", "block"])
async def test_sync_and_async_checks_agree(on_error: str) -> None:
    guard = Guard(policy(on_error=on_error, allowlist=["Blocked."]), scanner=CountingScanner())
    failing = Guard(policy(on_error=on_error), scanner=RaisingScanner())
    cases = [
        (guard, Candidate(REFUSAL)),
        (guard, Candidate(ANSWER)),
        (guard, Candidate("Blocked.")),
        (guard, Candidate(None, refusal="no", detail="content_filter")),
        (guard, Candidate("")),
        (failing, Candidate(ANSWER)),
    ]
    for g, candidate in cases:
        sync = await asyncio.to_thread(g.check, PROMPT, candidate)
        asynchronous = await g.acheck(PROMPT, candidate)
        assert sync == asynchronous
        assert sync.to_dict() == asynchronous.to_dict()


async def test_arun_accepts_sync_call_again() -> None:
    guard = Guard(policy(action="retry"), scanner=CountingScanner())
    outcome = await guard.arun(
        PROMPT,
        reply(REFUSAL),
        candidates=candidates,
        call_again=lambda r: reply(ANSWER),  # type: ignore[arg-type, return-value]
    )
    assert outcome.action == "retry"


async def test_a_sync_call_inside_a_loop_with_an_async_hook_is_logged_not_hung(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def hook(event: DecisionEvent) -> None:
        raise AssertionError("never awaited")

    guard = Guard("monitor", scanner=CountingScanner(), on_decision=hook)
    result = guard.check(PROMPT, Candidate(ANSWER))  # sync call on the loop's thread
    assert result.valid
    assert "on_decision raised RuntimeError" in caplog.text
