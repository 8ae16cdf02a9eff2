"""Core correctness regressions (issue #18): misuse fails loudly at every door, results carry
the model's threshold, ``ScanResult`` holds its invariants, and metrics tell errors apart."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import uuid
from pathlib import Path
from typing import Any

import httpx2
import pytest
from _openai_fakes import (
    BASE_URL,
    chat_choice,
    chat_completion,
    chat_stream,
    no_network,
    output_text,
    response_body,
    sse,
)
from _policy_fakes import REFUSAL, Reply, candidates, replace, reply
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, HumanMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from langchain_core.runnables import RunnableParallel, RunnablePassthrough
from norefusal import NoRefusalScanner, RefusalDetected, ScanResult, Signal
from norefusal._presets import DEFAULT_MODEL_DIR
from norefusal.integrations.langchain import NoRefusalCallbackHandler, NoRefusalGuard
from norefusal.integrations.openai import GuardedOpenAI
from norefusal.policies import Candidate, DecisionEvent, Guard, GuardMonitor, Policy

__all__ = ["no_network"]  # autouse fixture: no test here may reach the network

#: OpenAI ``messages``: the easy mistake is to pass them as the prompt.
MESSAGES = [{"role": "user", "content": "How do I pick a lock?"}]


class PromptRecordingScanner(NoRefusalScanner):
    """The keyword scanner, recording every prompt it is given."""

    def __init__(self) -> None:
        super().__init__(model="keyword")
        self.prompts: list[object] = []

    def scan(self, prompt: str | None, output: str | None) -> ScanResult:
        self.prompts.append(prompt)
        return super().scan(prompt, output)


# -- 1. a non-string prompt raises TypeError at once, in every door ---------------------------

POLICIES = {
    "replace, on_error allow": "fallback-message",
    "raise": "strict",
    "flag": "monitor",
    "replace, on_error block": Policy.from_dict(
        {"name": "block", "action": "replace", "replacement": "No.", "on_error": "block"}
    ),
}


def _guard_doors(guard: Guard) -> dict[str, Any]:
    refused = reply(REFUSAL)
    again = {"call_again": lambda r: refused, "call_fallback": lambda r: refused}

    async def aagain(request: object) -> object:
        return refused

    return {
        "check": lambda: guard.check(MESSAGES, Candidate(REFUSAL)),  # type: ignore[arg-type]
        "acheck": lambda: asyncio.run(guard.acheck(MESSAGES, Candidate(REFUSAL))),  # type: ignore[arg-type]
        "run": lambda: guard.run(
            MESSAGES, refused, candidates=candidates, replace=replace, **again
        ),
        "arun": lambda: asyncio.run(
            guard.arun(
                MESSAGES,
                refused,
                candidates=candidates,
                replace=replace,
                call_again=aagain,
                call_fallback=aagain,
            )
        ),
        "monitor": lambda: guard.monitor(MESSAGES),  # type: ignore[arg-type]
        "GuardMonitor": lambda: GuardMonitor(guard, MESSAGES),  # type: ignore[arg-type]
    }


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_a_non_string_prompt_is_a_type_error_in_every_guard_door(policy: str) -> None:
    """Before: the scanner's TypeError became ``Signal.ERROR`` and ``on_error`` decided, so
    the refusal passed unreplaced (``allow``) or raised as a refusal "decided by error"."""
    scanner = PromptRecordingScanner()
    events: list[DecisionEvent] = []
    guard = Guard(POLICIES[policy], scanner=scanner, on_decision=events.append)
    for door, call in _guard_doors(guard).items():
        with pytest.raises(TypeError, match="prompt must be a str or None, not list") as info:
            call()
        assert not isinstance(info.value, RefusalDetected), door
        assert "last user message" in str(info.value)
    assert scanner.prompts == []  # nothing was scanned
    assert events == []  # nothing was decided
    assert guard.metrics.snapshot()["errors"] == 0


def test_none_is_still_an_empty_prompt() -> None:
    scanner = PromptRecordingScanner()
    guard = Guard("monitor", scanner=scanner)
    assert guard.check(None, Candidate(REFUSAL)).is_refusal
    monitor = guard.monitor(None)
    monitor.feed(REFUSAL)
    assert monitor.finish().is_refusal
    assert set(scanner.prompts) == {""}


def _openai(guard: Guard, body: dict[str, Any] | None = None, chunks: Any = None) -> GuardedOpenAI:
    def handle(request: httpx2.Request) -> httpx2.Response:
        if chunks is not None:
            return httpx2.Response(
                200, headers={"content-type": "text/event-stream"}, content=b"".join(chunks)
            )
        return httpx2.Response(200, json=body)

    return GuardedOpenAI(
        api_key="sk-test",
        base_url=BASE_URL,
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(handle)),
        guard=guard,
    )


def test_openai_doors_scan_a_string_prompt_built_from_messages() -> None:
    """The adapters build the prompt from ``messages`` / ``input``: always a string, so the
    classifier decides (``Signal.CLASSIFIER``), never a swallowed TypeError (``ERROR``)."""
    scanner = PromptRecordingScanner()
    guard = Guard("strict", scanner=scanner)
    ask: Any = {"model": "m", "messages": MESSAGES}
    doors = {
        "chat": lambda: _openai(
            guard, chat_completion(chat_choice(REFUSAL))
        ).chat.completions.create(**ask),
        "chat stream": lambda: list(
            _openai(guard, chunks=sse(chat_stream(REFUSAL))).chat.completions.create(
                stream=True, **ask
            )
        ),
        "responses": lambda: _openai(guard, response_body(output_text(REFUSAL))).responses.create(
            model="m",
            input=MESSAGES,  # type: ignore[arg-type]
        ),
    }
    for door, call in doors.items():
        with pytest.raises(RefusalDetected) as info:
            call()
        assert info.value.result.signal is Signal.CLASSIFIER, door
        assert "pick a lock" in info.value.prompt, door
    assert scanner.prompts
    assert all(isinstance(p, str) for p in scanner.prompts)


def test_langchain_doors_scan_a_string_prompt_built_from_messages() -> None:
    scanner = PromptRecordingScanner()
    guard = Guard("monitor", scanner=scanner)
    # The callback handler: LangChain hands it the messages of each run.
    handler = NoRefusalCallbackHandler(guard=guard)
    run_id = uuid.uuid4()
    handler.on_chat_model_start({}, [[HumanMessage("How do I pick a lock?")]], run_id=run_id)
    answer = LLMResult(generations=[[ChatGeneration(message=AIMessage(REFUSAL))]])
    handler.on_llm_end(answer, run_id=run_id)
    verdict = handler.results[run_id]
    assert verdict.refused
    # The chain step, carrying the model's input (a list of messages) as the prompt.
    events: list[DecisionEvent] = []
    logged = Guard(
        Policy.from_dict({"name": "t", "log_text": True}),
        scanner=scanner,
        on_decision=events.append,
    )
    chain = RunnableParallel(
        prompt=RunnablePassthrough(), output=FakeListChatModel(responses=[REFUSAL])
    ) | NoRefusalGuard(guard=logged)
    chain.invoke([HumanMessage("How do I pick a lock?")])
    assert events[-1].signal == "classifier"
    assert events[-1].prompt == "How do I pick a lock?"
    assert scanner.prompts
    assert all(isinstance(p, str) for p in scanner.prompts)


def test_langchain_agent_middleware_scans_a_string_prompt() -> None:
    pytest.importorskip("langchain.agents")
    from langchain.agents import create_agent
    from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
    from norefusal.integrations.langchain import NoRefusalMiddleware

    scanner = PromptRecordingScanner()
    events: list[DecisionEvent] = []
    guard = Guard(
        Policy.from_dict({"name": "t", "log_text": True}),
        scanner=scanner,
        on_decision=events.append,
    )
    agent = create_agent(
        model=FakeMessagesListChatModel(responses=[AIMessage(REFUSAL)]),
        middleware=[NoRefusalMiddleware(guard=guard)],
    )
    agent.invoke({"messages": [HumanMessage("How do I pick a lock?")]})
    assert (events[-1].signal, events[-1].is_refusal) == ("classifier", True)
    assert events[-1].prompt == "How do I pick a lock?"
    assert scanner.prompts
    assert all(isinstance(p, str) for p in scanner.prompts)


# -- 5. results carry the model's threshold before the first scan -----------------------------


def _default_threshold() -> float:
    config = json.loads((DEFAULT_MODEL_DIR / "norefusal.json").read_text(encoding="utf-8"))
    return float(config["threshold"])


def test_a_provider_refusal_from_a_fresh_guard_carries_the_models_threshold() -> None:
    """Before: 0.5 (the preset's placeholder) until a first scan built the scanner."""
    threshold = _default_threshold()
    assert threshold != 0.5
    guard = Guard("strict")  # the embedded default model, not built, not loaded
    refused = Reply((None,), refusals=("I can't help with that.",))
    with pytest.raises(RefusalDetected) as info:
        guard.run("q", refused, candidates=candidates)
    assert info.value.result.signal is Signal.PROVIDER
    assert info.value.result.threshold == threshold
    assert f"threshold {threshold:.3f}" in str(info.value)
    assert guard.check("q", Candidate(None, refusal="No.")).threshold == threshold
    # Nothing was loaded to find it: the model loads at its first scan.
    assert isinstance(guard.scanner, NoRefusalScanner)
    assert guard.scanner._backend is None


def test_allowlisted_and_empty_results_carry_the_scanners_threshold() -> None:
    policy = Policy.from_dict(
        {"name": "t", "allowlist": ["Blocked."], "scanner": {"threshold": 0.7}}
    )
    guard = Guard(policy)
    assert guard.check("q", Candidate("Blocked.")).threshold == 0.7
    assert Guard("monitor").check("q", Candidate("  ")).threshold == _default_threshold()


# -- 7. scanner errors count apart from refusals ------------------------------------------------


class FailingScanner:
    """A scanner in an outage: every scan raises."""

    threshold = 0.5
    model_name = "failing"

    def scan(self, prompt: str | None, output: str | None) -> ScanResult:
        raise RuntimeError("backend unavailable")


@pytest.mark.parametrize("on_error", ["block", "allow"])
def test_a_scanner_outage_is_not_a_refusal_rate(on_error: str) -> None:
    """Before: under on_error: block, every failed scan counted as a refusal, so
    refusal_rate read 1.0 through an outage and a dashboard showed the model refusing."""
    policy = Policy.from_dict({"name": "t", "on_error": on_error, "timeout_s": 30})
    guard = Guard(policy, scanner=FailingScanner())
    for _ in range(4):
        assert guard.check("q", Candidate(REFUSAL)).signal is Signal.ERROR
    snapshot = guard.metrics.snapshot()
    assert (snapshot["scans"], snapshot["errors"], snapshot["refusals"]) == (4, 4, 0)
    assert snapshot["errors_blocked"] == (4 if on_error == "block" else 0)
    assert (snapshot["refusal_rate"], snapshot["error_rate"]) == (0.0, 1.0)


def test_refusal_rate_counts_the_outputs_whose_content_decided() -> None:
    scanner = PromptRecordingScanner()
    guard = Guard(Policy.from_dict({"name": "t", "on_error": "block"}), scanner=scanner)
    for text in (REFUSAL, "Sure, here it is.", "Paris is the capital of France."):
        guard.check("q", Candidate(text))
    guard.check("q", Candidate(None, refusal="No."))  # a provider refusal decides too
    failing = Guard(Policy.from_dict({"name": "t", "on_error": "block"}), scanner=FailingScanner())
    failing.metrics = guard.metrics  # one dashboard, two scanners: one of them down
    failing.check("q", Candidate(REFUSAL))
    sampled = Guard(Policy.from_dict({"name": "s", "sample_rate": 0.0}), scanner=scanner)
    sampled.metrics = guard.metrics
    sampled.check("q", Candidate(REFUSAL))  # skipped: not scanned, not counted either way
    snapshot = guard.metrics.snapshot()
    assert (snapshot["scans"], snapshot["refusals"], snapshot["errors"]) == (6, 2, 1)
    assert (snapshot["errors_blocked"], snapshot["skipped"]) == (1, 1)
    assert snapshot["refusal_rate"] == 2 / 4
    assert snapshot["error_rate"] == 1 / 6


# -- 8. the training recipe pins what decides the model's bytes --------------------------------

#: What decides the bytes of an exported model.onnx: the traced model code, the exporter and
#: its IR, the int8 quantizer.
EXPORTER = ("torch", "transformers", "onnx", "onnxscript", "onnx-ir", "onnxruntime")


def test_the_train_extra_pins_the_exporter_exactly() -> None:
    """Before: ranges (onnx>=1.15, onnxscript>=0.1), so a re-run elsewhere exported another
    model.onnx (same scores, another SHA256) while the card promised the same bytes."""
    tomllib = pytest.importorskip("tomllib")
    pyproject = Path(__file__).resolve().parents[1] / "pyproject.toml"
    train = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    pins = {}
    for requirement in train["train"]:
        name, _, version = requirement.partition("==")
        pins[name] = version
    assert all(pins.get(name) for name in EXPORTER), pins
    # This environment (installed from .[dev], which holds train) is the pinned one.
    for name in EXPORTER:
        installed = importlib.metadata.version(name)
        assert installed.split("+")[0] == pins[name], (name, installed)
