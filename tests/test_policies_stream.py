"""Streams: the guard's monitor, and the verdict a policy gives on a stream."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _policy_fakes import (
    ANSWER,
    BLOCK_MESSAGE,
    PROMPT,
    REFUSAL,
    CountingScanner,
    HangingScanner,
    RaisingScanner,
)
from norefusal import RefusalDetected, ScanResult, Signal
from norefusal.policies import (
    DEFAULT_BLOCK_MESSAGE,
    DecisionEvent,
    Guard,
    GuardMonitor,
    Policy,
    StreamAction,
)

LONG_REFUSAL = REFUSAL + " " + "It would not be appropriate for me to assist with this. " * 3
LONG_ANSWER = ANSWER + " " + "Knead the dough for ten minutes, then let it rise. " * 12


def policy(**fields: Any) -> Policy:
    return Policy.from_dict({"name": "test", **fields})


def chunks(text: str, size: int = 7) -> Iterator[str]:
    for i in range(0, len(text), size):
        yield text[i : i + size]


def feed_all(monitor: GuardMonitor, text: str) -> list[ScanResult]:
    return [v for piece in chunks(text) if (v := monitor.feed(piece)) is not None]


def test_monitor_finds_a_refusal_early_and_once() -> None:
    scanner = CountingScanner()
    monitor = Guard(scanner=scanner).monitor(PROMPT)
    verdicts = feed_all(monitor, LONG_REFUSAL)
    assert len(verdicts) == 1
    assert verdicts[0].is_refusal
    assert monitor.verdict is verdicts[0]
    assert monitor.cleared == 0
    assert scanner.calls == 1  # found at the first checkpoint, no scan after it
    assert monitor.finish().is_refusal
    assert monitor.finished
    assert monitor.text == LONG_REFUSAL


def test_monitor_clears_an_answer_with_a_bounded_number_of_scans() -> None:
    scanner = CountingScanner()
    monitor = Guard(scanner=scanner).monitor(PROMPT)
    assert feed_all(monitor, LONG_ANSWER) == []
    final = monitor.finish()
    assert final.valid
    assert monitor.cleared == len(LONG_ANSWER)
    assert monitor.scans == scanner.calls <= 4
    assert monitor.finish() is final
    with pytest.raises(RuntimeError, match="finished"):
        monitor.feed("more")


async def test_async_monitor_matches_the_sync_one() -> None:
    sync = Guard(scanner=CountingScanner()).monitor(PROMPT)
    asynchronous = Guard(scanner=CountingScanner()).monitor(PROMPT)
    for piece in chunks(LONG_REFUSAL):
        assert sync.feed(piece) == await asynchronous.afeed(piece)
    assert sync.finish() == await asynchronous.afinish()
    assert sync.scans == asynchronous.scans


def test_monitor_samples_whole_streams() -> None:
    scanner = CountingScanner()
    skipped = Guard(policy(sample_rate=0.0), scanner=scanner).monitor(PROMPT)
    assert feed_all(skipped, LONG_REFUSAL) == []
    assert skipped.finish().signal is Signal.SKIPPED
    assert scanner.calls == 0
    # Only the stream's first text is sampled; later checkpoints follow it.
    seen: list[str] = []

    def sampler(text: str) -> float:
        seen.append(text)
        return 0.1

    kept = Guard(policy(sample_rate=0.5), scanner=scanner, sampler=sampler).monitor(PROMPT)
    assert feed_all(kept, LONG_ANSWER) == []
    assert kept.finish().signal is Signal.CLASSIFIER
    assert len(seen) == 1
    assert scanner.calls == kept.scans >= 3


def test_monitor_does_not_flag_an_allowlisted_message_while_it_streams() -> None:
    guard = Guard(policy(action="raise", allowlist=[BLOCK_MESSAGE]), scanner=CountingScanner())
    monitor = guard.monitor(PROMPT)
    assert feed_all(monitor, BLOCK_MESSAGE) == []
    final = monitor.finish()
    assert final.signal is Signal.ALLOWLIST
    assert guard.stream_verdict(PROMPT, monitor.text, final).kind == "pass"
    # A refusal that departs from the allow-listed text is still caught mid-stream.
    other = guard.monitor(PROMPT)
    assert feed_all(other, LONG_REFUSAL)


@pytest.mark.parametrize(("on_error", "refused"), [("allow", False), ("block", True)])
def test_monitor_scanner_errors_follow_on_error(on_error: str, refused: bool) -> None:
    monitor = Guard(policy(on_error=on_error), scanner=RaisingScanner()).monitor(PROMPT)
    verdicts = feed_all(monitor, LONG_ANSWER)
    assert bool(verdicts) is refused
    assert monitor.finish().signal is Signal.ERROR


def test_monitor_returns_within_the_timeout_on_a_hang() -> None:
    hanging = HangingScanner()
    try:
        monitor = Guard(policy(timeout_s=0.1), scanner=hanging).monitor(PROMPT)
        assert monitor.feed(LONG_ANSWER[:50]) is None
        assert monitor.finish().detail == "timeout"
    finally:
        hanging.release.set()


def _refusal(signal: Signal = Signal.CLASSIFIER) -> ScanResult:
    return ScanResult(REFUSAL, score=0.99, threshold=0.5, signal=signal)


def test_stream_verdict_per_policy() -> None:
    events: list[DecisionEvent] = []
    scanner = CountingScanner()
    ok = ScanResult(ANSWER, score=0.01, threshold=0.5)

    def guard(p: Policy | str) -> Guard:
        return Guard(p, scanner=scanner, on_decision=events.append)

    assert guard("monitor").stream_verdict(PROMPT, ANSWER, ok) == StreamAction("pass")
    assert guard("monitor").stream_verdict(PROMPT, REFUSAL, _refusal()) == StreamAction("flag")
    replaced = guard("fallback-message").stream_verdict(PROMPT, REFUSAL, _refusal())
    assert replaced == StreamAction("replace", Policy.builtin("fallback-message").replacement)
    with pytest.raises(RefusalDetected) as info:
        guard("strict").stream_verdict(PROMPT, REFUSAL, _refusal())
    assert (info.value.policy, info.value.output) == ("strict", REFUSAL)
    # A stream cannot be retried: retry and fallback apply their final action.
    with pytest.raises(RefusalDetected):
        guard("retry-then-raise").stream_verdict(PROMPT, REFUSAL, _refusal())
    fallback = policy(action="fallback", fallback_model="b", final_action="flag")
    assert guard(fallback).stream_verdict(PROMPT, REFUSAL, _refusal()).kind == "flag"
    assert [e.action for e in events] == ["pass", "flag", "replace", "raise", "raise", "flag"]
    assert {e.stage for e in events} == {"stream"}


def test_stream_verdict_on_a_blocked_scanner_error() -> None:
    blocked = _refusal(Signal.ERROR)
    guard = Guard(policy(on_error="block"), scanner=CountingScanner())
    assert guard.stream_verdict(PROMPT, ANSWER, blocked) == StreamAction(
        "replace", DEFAULT_BLOCK_MESSAGE
    )
    assert guard.metrics.snapshot()["blocks"] == 1
    with pytest.raises(RefusalDetected):
        Guard("strict", scanner=CountingScanner()).stream_verdict(PROMPT, ANSWER, blocked)


def test_stream_verdict_honours_the_allowlist_for_outside_results() -> None:
    guard = Guard(policy(action="raise", allowlist=[BLOCK_MESSAGE]), scanner=CountingScanner())
    action = guard.stream_verdict(PROMPT, BLOCK_MESSAGE, _refusal())
    assert action.kind == "pass"
    assert guard.metrics.snapshot()["allowlisted"] == 1


async def test_astream_verdict_awaits_an_async_hook() -> None:
    seen: list[str] = []

    async def hook(event: DecisionEvent) -> None:
        seen.append(event.action)

    guard = Guard("monitor", scanner=CountingScanner(), on_decision=hook)
    assert (await guard.astream_verdict(PROMPT, REFUSAL, _refusal())).kind == "flag"
    with pytest.raises(RefusalDetected):
        await Guard("strict", scanner=CountingScanner()).astream_verdict(
            PROMPT, REFUSAL, _refusal()
        )
    assert seen == ["flag"]
