"""Guard: every action, retries, fallbacks, scanner failures and hangs, sampling, allow-list."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from _policy_fakes import (
    ANSWER,
    ANSWER_2,
    BLOCK_MESSAGE,
    PROMPT,
    REFUSAL,
    REFUSAL_2,
    CountingScanner,
    HangingScanner,
    RaisingScanner,
    Reply,
    candidates,
    replace,
    reply,
)
from norefusal import (
    ConfigurationError,
    ModelLoadError,
    NoRefusalScanner,
    RefusalDetected,
    Signal,
)
from norefusal.policies import (
    DEFAULT_BLOCK_MESSAGE,
    Candidate,
    DecisionEvent,
    FallbackRequest,
    Guard,
    Policy,
    RetryRequest,
)
from norefusal.policies._pool import MAX_WORKERS


def policy(**fields: Any) -> Policy:
    return Policy.from_dict({"name": "test", **fields})


@pytest.fixture
def scanner() -> CountingScanner:
    return CountingScanner()


@pytest.fixture
def hanging() -> Iterator[HangingScanner]:
    fake = HangingScanner()
    yield fake
    fake.release.set()  # free the pool's worker threads for the next tests


class Script:
    """A model that answers from a list, recording the requests it got."""

    def __init__(self, *answers: Reply) -> None:
        self.answers = list(answers)
        self.requests: list[RetryRequest | FallbackRequest] = []

    def __call__(self, request: RetryRequest | FallbackRequest) -> Reply:
        self.requests.append(request)
        return self.answers.pop(0)

    async def acall(self, request: RetryRequest | FallbackRequest) -> Reply:
        await asyncio.sleep(0)
        return self(request)


# -- flag, raise, replace --------------------------------------------------------------------


def test_pass_returns_the_response_unchanged(scanner: CountingScanner) -> None:
    response = reply(ANSWER)
    outcome = Guard(scanner=scanner).run(PROMPT, response, candidates=candidates)
    assert outcome.action == "pass"
    assert outcome.response is response
    assert not outcome.refused
    assert outcome.original is None
    assert outcome.attempts == 1
    assert outcome.result.signal is Signal.CLASSIFIER
    assert outcome.result.valid


def test_flag_passes_a_refusal_through_marked(scanner: CountingScanner) -> None:
    events: list[DecisionEvent] = []
    response = reply(REFUSAL)
    guard = Guard("monitor", scanner=scanner, on_decision=events.append)
    outcome = guard.run(PROMPT, response, candidates=candidates)
    assert outcome.action == "flag"
    assert outcome.refused
    assert outcome.response is response
    assert outcome.result.is_refusal
    assert [e.action for e in events] == ["flag"]
    assert events[0].policy == "monitor"
    assert events[0].is_refusal


def test_raise_carries_result_prompt_output_and_policy(scanner: CountingScanner) -> None:
    with pytest.raises(RefusalDetected) as info:
        Guard("strict", scanner=scanner).run(PROMPT, reply(REFUSAL), candidates=candidates)
    error = info.value
    assert error.policy == "strict"
    assert error.prompt == PROMPT
    assert error.output == REFUSAL
    assert error.result.is_refusal
    assert REFUSAL not in str(error)
    assert PROMPT not in str(error)


def test_replace_swaps_only_refused_candidates_and_keeps_the_original(
    scanner: CountingScanner,
) -> None:
    guard = Guard("fallback-message", scanner=scanner)
    response = reply(ANSWER, REFUSAL, ANSWER_2)
    outcome = guard.run(PROMPT, response, candidates=candidates, replace=replace)
    message = guard.policy.replacement
    assert outcome.action == "replace"
    assert outcome.response.texts == (ANSWER, message, ANSWER_2)
    assert outcome.original is response
    assert outcome.refused
    assert [r.is_refusal for r in outcome.results] == [False, True, False]
    assert outcome.result is outcome.results[1]


def test_n_candidates_without_refusal_pass(scanner: CountingScanner) -> None:
    outcome = Guard("strict", scanner=scanner).run(
        PROMPT, reply(ANSWER, ANSWER_2, None), candidates=candidates
    )
    assert outcome.action == "pass"
    assert [r.signal for r in outcome.results] == [
        Signal.CLASSIFIER,
        Signal.CLASSIFIER,
        Signal.EMPTY,
    ]


def test_no_candidates_is_not_a_refusal(scanner: CountingScanner) -> None:
    outcome = Guard("strict", scanner=scanner).run(PROMPT, reply(), candidates=candidates)
    assert outcome.action == "pass"
    assert outcome.result.signal is Signal.EMPTY
    assert scanner.calls == 0


def test_candidates_must_be_candidate_objects(scanner: CountingScanner) -> None:
    with pytest.raises(TypeError, match="Candidate"):
        Guard(scanner=scanner).run(PROMPT, "text", candidates=lambda r: [r])  # type: ignore[list-item]


# -- retry and fallback -----------------------------------------------------------------------


def test_retry_until_an_answer_passes(scanner: CountingScanner) -> None:
    model = Script(reply(REFUSAL_2, source="retry1"), reply(ANSWER, source="retry2"))
    guard = Guard("retry-then-raise", scanner=scanner)
    first = reply(REFUSAL)
    outcome = guard.run(PROMPT, first, candidates=candidates, call_again=model)
    instruction = guard.policy.retry_instruction
    assert model.requests == [RetryRequest(1, instruction), RetryRequest(2, instruction)]
    assert outcome.action == "retry"
    assert outcome.response.source == "retry2"
    assert outcome.original is first
    assert outcome.attempts == 3
    assert not outcome.refused


def test_retry_exhaustion_applies_final_action_raise(scanner: CountingScanner) -> None:
    model = Script(reply(REFUSAL_2), reply(REFUSAL))
    guard = Guard("retry-then-raise", scanner=scanner)
    with pytest.raises(RefusalDetected) as info:
        guard.run(PROMPT, reply(REFUSAL), candidates=candidates, call_again=model)
    assert len(model.requests) == guard.policy.retries == 2
    assert info.value.output == REFUSAL  # the last answer's text
    snapshot = guard.metrics.snapshot()
    assert snapshot["retries"] == 2
    assert snapshot["raises"] == 1
    assert snapshot["refusals"] == 3


@pytest.mark.parametrize(("final", "expected"), [("flag", "flag"), ("replace", "replace")])
def test_retry_exhaustion_applies_final_action(
    scanner: CountingScanner, final: str, expected: str
) -> None:
    fields: dict[str, Any] = {"action": "retry", "retries": 1, "final_action": final}
    if final == "replace":
        fields["replacement"] = "Please rephrase."
    model = Script(reply(REFUSAL_2, source="retry1"))
    first = reply(REFUSAL)
    outcome = Guard(policy(**fields), scanner=scanner).run(
        PROMPT, first, candidates=candidates, call_again=model, replace=replace
    )
    assert outcome.action == expected
    assert outcome.refused
    assert outcome.attempts == 2
    assert outcome.original is first
    assert outcome.response.source == "retry1"
    if final == "replace":
        assert outcome.response.texts == ("Please rephrase.",)


def test_retries_zero_goes_straight_to_the_final_action(scanner: CountingScanner) -> None:
    guard = Guard(policy(action="retry", retries=0, final_action="raise"), scanner=scanner)
    with pytest.raises(RefusalDetected):
        guard.run(PROMPT, reply(REFUSAL), candidates=candidates)


def test_fallback_answer_passes(scanner: CountingScanner) -> None:
    model = Script(reply(ANSWER, source="fallback"))
    guard = Guard(policy(action="fallback", fallback_model="gpt-backup"), scanner=scanner)
    outcome = guard.run(PROMPT, reply(REFUSAL), candidates=candidates, call_fallback=model)
    assert model.requests == [FallbackRequest(model="gpt-backup", attempt=1)]
    assert outcome.action == "fallback"
    assert outcome.response.source == "fallback"
    assert outcome.attempts == 2


def test_fallback_that_also_refuses_applies_final_action(scanner: CountingScanner) -> None:
    model = Script(reply(REFUSAL_2, source="fallback"))
    guard = Guard(
        policy(action="fallback", fallback_model="gpt-backup", final_action="raise"),
        scanner=scanner,
    )
    with pytest.raises(RefusalDetected) as info:
        guard.run(PROMPT, reply(REFUSAL), candidates=candidates, call_fallback=model)
    assert info.value.output == REFUSAL_2
    assert len(model.requests) == 1
    assert guard.metrics.snapshot()["fallbacks"] == 1


def test_retry_then_fallback_then_final(scanner: CountingScanner) -> None:
    again = Script(reply(REFUSAL_2))
    fallback = Script(reply(REFUSAL, source="fallback"))
    events: list[DecisionEvent] = []
    guard = Guard(
        policy(action="retry", retries=1, fallback_model="backup", final_action="flag"),
        scanner=scanner,
        on_decision=events.append,
    )
    outcome = guard.run(
        PROMPT, reply(REFUSAL), candidates=candidates, call_again=again, call_fallback=fallback
    )
    assert [(e.action, e.attempt) for e in events] == [("retry", 1), ("fallback", 2), ("flag", 3)]
    assert outcome.action == "flag"
    assert outcome.response.source == "fallback"
    assert outcome.attempts == 3


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"action": "retry"}, "call_again"),
        ({"action": "fallback", "fallback_model": "m"}, "call_fallback"),
        ({"action": "replace", "replacement": "x"}, "replace"),
        ({"action": "flag", "on_error": "block"}, "replace"),
    ],
)
def test_missing_callable_is_a_configuration_error_naming_it(
    scanner: CountingScanner, fields: dict[str, Any], missing: str
) -> None:
    # Checked up front, even for an answer that passes: not only on the rare refusal.
    with pytest.raises(ConfigurationError, match=missing):
        Guard(policy(**fields), scanner=scanner).run(PROMPT, reply(ANSWER), candidates=candidates)


# -- provider signals, empty output, allow-list, sampling -------------------------------------


def test_provider_refusal_decides_without_the_classifier(scanner: CountingScanner) -> None:
    guard = Guard(scanner=scanner)
    result = guard.check(PROMPT, Candidate(None, refusal="I can't help.", detail="message.refusal"))
    assert result.is_refusal
    assert result.score == 1.0
    assert result.signal is Signal.PROVIDER
    assert result.detail == "message.refusal"
    assert result.sanitized == "I can't help."
    assert scanner.calls == 0


def test_provider_refusal_in_one_of_n_candidates(scanner: CountingScanner) -> None:
    response = Reply((ANSWER, None), refusals=(None, "I won't do that."))
    outcome = Guard("fallback-message", scanner=scanner).run(
        PROMPT, response, candidates=candidates, replace=replace
    )
    assert outcome.action == "replace"
    assert outcome.response.texts[0] == ANSWER
    assert outcome.result.signal is Signal.PROVIDER
    assert scanner.calls == 1


@pytest.mark.parametrize("text", [None, "", "   \n"])
def test_empty_output_is_not_a_refusal(scanner: CountingScanner, text: str | None) -> None:
    result = Guard("strict", scanner=scanner).check(PROMPT, Candidate(text))
    assert result.valid
    assert result.signal is Signal.EMPTY
    assert scanner.calls == 0


def test_allowlisted_block_messages_are_not_refusals(scanner: CountingScanner) -> None:
    guard = Guard(
        policy(
            action="raise",
            allowlist=[BLOCK_MESSAGE, {"regex": r"request \d+ was blocked\.", "ignore_case": True}],
        ),
        scanner=scanner,
    )
    exact = guard.check(PROMPT, Candidate(f"  {BLOCK_MESSAGE}\n"))
    pattern = guard.check(PROMPT, Candidate("Request 42 was BLOCKED."))
    provider = guard.check(PROMPT, Candidate(None, refusal=BLOCK_MESSAGE))
    assert [r.signal for r in (exact, pattern, provider)] == [Signal.ALLOWLIST] * 3
    assert all(r.valid for r in (exact, pattern, provider))
    assert scanner.calls == 0
    # Not on the list: the same kind of text is still a refusal, and partial matches do not count.
    assert guard.check(PROMPT, Candidate(REFUSAL)).is_refusal
    assert guard.check(PROMPT, Candidate("I can't help: request 42 was blocked. Sorry.")).is_refusal
    assert guard.metrics.snapshot()["allowlisted"] == 3
    # Without the allow-list the block message would have counted as a refusal.
    assert Guard("monitor", scanner=scanner).check(PROMPT, Candidate(BLOCK_MESSAGE)).is_refusal


def test_the_allowlist_ignores_long_outputs(scanner: CountingScanner) -> None:
    # Block messages are short: a pattern is never tried on a long output.
    guard = Guard(policy(allowlist=[{"regex": "a*a*a*a*b"}]), scanner=scanner)
    result = guard.check(PROMPT, Candidate("a" * 50_000))
    assert result.signal is Signal.CLASSIFIER
    assert guard.check(PROMPT, Candidate("aaab")).signal is Signal.ALLOWLIST


def test_sample_rate_zero_scans_nothing(scanner: CountingScanner) -> None:
    guard = Guard(policy(action="raise", sample_rate=0.0), scanner=scanner)
    outcome = guard.run(PROMPT, reply(REFUSAL, ANSWER), candidates=candidates)
    assert outcome.action == "pass"
    assert [r.signal for r in outcome.results] == [Signal.SKIPPED, Signal.SKIPPED]
    assert scanner.calls == 0
    # Provider signals cost nothing and are never sampled out.
    assert guard.check(PROMPT, Candidate(None, refusal="no")).is_refusal
    assert guard.metrics.snapshot()["skipped"] == 2


def test_sample_rate_one_scans_everything(scanner: CountingScanner) -> None:
    guard = Guard(policy(action="flag", sample_rate=1.0), scanner=scanner)
    texts = [f"{ANSWER} #{i}" for i in range(20)]
    results = [guard.check(PROMPT, Candidate(t)) for t in texts]
    assert all(r.signal is Signal.CLASSIFIER for r in results)
    assert scanner.calls == 20


def test_sampling_is_deterministic_per_text_and_injectable(scanner: CountingScanner) -> None:
    texts = [f"{ANSWER} #{i}" for i in range(200)]
    guard = Guard(policy(sample_rate=0.5), scanner=scanner)
    first = [guard.check(PROMPT, Candidate(t)).signal for t in texts]
    again = [guard.check(PROMPT, Candidate(t)).signal for t in texts]
    assert first == again
    assert 40 < first.count(Signal.SKIPPED) < 160
    seen: list[str] = []

    def sampler(text: str) -> float:
        seen.append(text)
        return 0.3 if "keep" in text else 0.9

    injected = Guard(policy(sample_rate=0.5), scanner=scanner, sampler=sampler)
    assert injected.check(PROMPT, Candidate("keep this")).signal is Signal.CLASSIFIER
    assert injected.check(PROMPT, Candidate("drop this")).signal is Signal.SKIPPED
    assert seen == ["keep this", "drop this"]


# -- scanner failures and hangs ------------------------------------------------------------


def test_on_error_allow_with_a_raising_backend() -> None:
    guard = Guard(policy(on_error="allow"), scanner=RaisingScanner())
    result = guard.check(PROMPT, Candidate(REFUSAL))
    assert result.valid
    assert result.signal is Signal.ERROR
    assert result.detail == "error:RuntimeError"
    outcome = guard.run(PROMPT, reply(REFUSAL), candidates=candidates)
    assert outcome.action == "pass"
    assert guard.metrics.snapshot()["errors"] == 2


def test_on_error_block_with_a_raising_backend() -> None:
    guard = Guard(policy(on_error="block"), scanner=RaisingScanner())
    result = guard.check(PROMPT, Candidate(ANSWER))
    assert result.is_refusal
    assert result.signal is Signal.ERROR
    outcome = guard.run(PROMPT, reply(ANSWER), candidates=candidates, replace=replace)
    assert outcome.action == "block"
    assert outcome.refused
    assert outcome.response.texts == (DEFAULT_BLOCK_MESSAGE,)
    assert guard.metrics.snapshot()["blocks"] == 1


def test_on_error_block_raises_under_a_raising_policy() -> None:
    with pytest.raises(RefusalDetected) as info:
        Guard("strict", scanner=RaisingScanner()).run(PROMPT, reply(ANSWER), candidates=candidates)
    assert info.value.result.signal is Signal.ERROR


def test_scanner_errors_are_not_retried() -> None:
    model = Script(reply(ANSWER))
    guard = Guard(
        policy(action="retry", retries=3, final_action="raise", on_error="block"),
        scanner=RaisingScanner(),
    )
    with pytest.raises(RefusalDetected):
        guard.run(PROMPT, reply(ANSWER), candidates=candidates, call_again=model)
    assert model.requests == []


@pytest.mark.parametrize("on_error", ["allow", "block"])
def test_a_hanging_backend_does_not_block_past_the_timeout(
    hanging: HangingScanner, on_error: str
) -> None:
    guard = Guard(policy(on_error=on_error, timeout_s=0.2), scanner=hanging)
    started = time.monotonic()
    result = guard.check(PROMPT, Candidate(ANSWER))
    assert time.monotonic() - started < 10  # the backend hangs for 30 s
    assert hanging.started.is_set()
    assert result.signal is Signal.ERROR
    assert result.detail == "timeout"
    assert result.is_refusal is (on_error == "block")


@pytest.mark.parametrize("on_error", ["allow", "block"])
async def test_a_hanging_backend_does_not_block_the_event_loop(
    hanging: HangingScanner, on_error: str
) -> None:
    guard = Guard(policy(on_error=on_error, timeout_s=0.2), scanner=hanging)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.01)

    ticker = asyncio.create_task(tick())
    started = time.monotonic()
    result = await guard.acheck(PROMPT, Candidate(ANSWER))
    ticker.cancel()
    assert time.monotonic() - started < 10
    assert ticks > 2  # the loop kept running while the scan hung
    assert result.detail == "timeout"
    assert result.is_refusal is (on_error == "block")


def test_hangs_never_grow_the_thread_pool_beyond_its_bound(hanging: HangingScanner) -> None:
    guard = Guard(policy(timeout_s=0.05), scanner=hanging)
    for _ in range(MAX_WORKERS + 5):
        assert guard.check(PROMPT, Candidate(ANSWER)).signal is Signal.ERROR
    workers = [t for t in threading.enumerate() if t.name.startswith("norefusal-scan-")]
    assert 0 < len(workers) <= MAX_WORKERS
    assert all(t.daemon for t in workers)


def test_a_released_pool_scans_again(hanging: HangingScanner, scanner: CountingScanner) -> None:
    Guard(policy(timeout_s=0.05), scanner=hanging).check(PROMPT, Candidate(ANSWER))
    hanging.release.set()
    assert Guard(scanner=scanner).check(PROMPT, Candidate(REFUSAL)).signal is Signal.CLASSIFIER


def test_a_missing_model_is_raised_not_hidden_by_on_error() -> None:
    class Unloadable:
        def scan(self, prompt: str | None, output: str | None) -> Any:
            raise ModelLoadError("The embedded model is missing.")

    guard = Guard(policy(on_error="allow"), scanner=Unloadable())
    with pytest.raises(ModelLoadError, match="missing"):
        guard.check(PROMPT, Candidate(ANSWER))


def test_candidate_fields_must_be_text() -> None:
    with pytest.raises(TypeError, match=r"Candidate\.text must be a str"):
        Candidate([{"type": "text", "text": "hi"}])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Candidate\.refusal"):
        Candidate(None, refusal=True)  # type: ignore[arg-type]


# -- the scanner is built lazily ------------------------------------------------------------


def test_guard_builds_its_scanner_lazily_from_the_policy(tmp_path: Any) -> None:
    missing = tmp_path / "no-model-here"
    guard = Guard(Policy.from_dict({"scanner": {"model": str(missing)}}))
    assert guard._scanner is None  # construction builds nothing
    # The first check builds the scanner (results carry its threshold, a provider signal's
    # too), so a misconfigured model fails loudly there, whatever decides the verdict.
    with pytest.raises(ModelLoadError, match="does not exist"):
        guard.check(PROMPT, Candidate(None, refusal="no"))
    with pytest.raises(ModelLoadError, match="does not exist"):
        _ = guard.scanner


def test_guard_builds_the_policy_scanner_settings() -> None:
    guard = Guard(Policy.from_dict({"scanner": {"model": "keyword", "threshold": 0.9}}))
    scanner = guard.scanner
    assert isinstance(scanner, NoRefusalScanner)
    assert scanner.model_name == "keyword"
    assert scanner.threshold == 0.9
    assert guard.scanner is scanner
    guard.warm_up()
    assert guard.check(PROMPT, Candidate(REFUSAL)).is_refusal


def test_guard_accepts_a_builtin_name_or_none() -> None:
    assert Guard().policy.name == "monitor"
    assert Guard("strict").policy.name == "strict"
    with pytest.raises(ConfigurationError, match="Did you mean 'strict'"):
        Guard("strikt")
    with pytest.raises(TypeError, match="policy"):
        Guard(42)  # type: ignore[arg-type]


# -- events, logs, metrics ------------------------------------------------------------------


def test_events_and_logs_never_hold_text_by_default(
    scanner: CountingScanner, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[DecisionEvent] = []
    guard = Guard(policy(on_error="allow"), scanner=RaisingScanner(), on_decision=events.append)
    with caplog.at_level(logging.DEBUG, logger="norefusal.policies"):
        guard.check(PROMPT, Candidate(REFUSAL))
        Guard("monitor", scanner=scanner, on_decision=events.append).run(
            PROMPT, reply(REFUSAL), candidates=candidates
        )
    assert [e.action for e in events] == ["check", "flag"]
    assert all(e.prompt is None and e.output is None for e in events)
    assert caplog.records
    for record in caplog.records:
        dumped = f"{record.getMessage()} {record.__dict__}"
        assert REFUSAL not in dumped
        assert PROMPT not in dumped
    assert {r.levelno for r in caplog.records} == {logging.WARNING, logging.INFO}
    assert caplog.records[-1].norefusal["action"] == "flag"  # type: ignore[attr-defined]


def test_log_text_puts_text_in_events(scanner: CountingScanner) -> None:
    events: list[DecisionEvent] = []
    guard = Guard(policy(log_text=True), scanner=scanner, on_decision=events.append)
    guard.run(PROMPT, reply(ANSWER, REFUSAL), candidates=candidates)
    (event,) = events
    assert event.prompt == PROMPT
    assert event.output == REFUSAL
    assert event.candidates == 2
    assert event.refused == 1
    assert event.to_dict()["output"] == REFUSAL


def test_a_failing_hook_is_logged_and_does_not_change_the_decision(
    scanner: CountingScanner, caplog: pytest.LogCaptureFixture
) -> None:
    def hook(event: DecisionEvent) -> None:
        raise ValueError("hook bug")

    guard = Guard("monitor", scanner=scanner, on_decision=hook)
    with caplog.at_level(logging.ERROR, logger="norefusal.policies"):
        outcome = guard.run(PROMPT, reply(REFUSAL), candidates=candidates)
    assert outcome.action == "flag"
    assert "on_decision raised ValueError" in caplog.text


def test_an_async_hook_runs_from_sync_code(scanner: CountingScanner) -> None:
    seen: list[str] = []

    async def hook(event: DecisionEvent) -> None:
        await asyncio.sleep(0)
        seen.append(event.action)

    Guard("monitor", scanner=scanner, on_decision=hook).check(PROMPT, Candidate(ANSWER))
    assert seen == ["check"]


def test_metrics_snapshot(scanner: CountingScanner) -> None:
    guard = Guard("monitor", scanner=scanner)
    for text in (REFUSAL, ANSWER, ANSWER_2, REFUSAL_2):
        guard.run(PROMPT, reply(text), candidates=candidates)
    guard.check(PROMPT, Candidate(None, refusal="no"))
    snapshot = guard.metrics.snapshot()
    assert snapshot["scans"] == 5
    assert snapshot["refusals"] == 3
    assert snapshot["provider"] == 1
    assert snapshot["flags"] == 2
    assert snapshot["passes"] == 2
    assert snapshot["decisions"] == 5
    assert snapshot["refusal_rate"] == pytest.approx(3 / 5)
    guard.metrics.reset()
    assert guard.metrics.snapshot()["scans"] == 0
    assert guard.metrics.snapshot()["refusal_rate"] == 0.0
